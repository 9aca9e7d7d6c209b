/* The give form: when the frequency changes, pre-select that frequency's suggested amount;
   typing a custom amount clears the presets; a one-time key marks the submission. Works without it (CSS shows the right presets). */
(function () {
  "use strict";
  var form = document.querySelector(".give-form");
  if (!form) { return; }
  var custom = form.querySelector("#custom_amount");
  form.addEventListener("change", function (event) {
    var target = event.target;
    if (target.name === "frequency") {
      var group = form.querySelector('.presets[data-frequency="' + target.value + '"]');
      if (!group) { return; }
      var pick = group.querySelector('input[value="' + group.getAttribute("data-suggested") + '"]');
      if (pick && (!custom || !custom.value)) { pick.checked = true; }
    } else if (target.name === "amount" && custom) {
      custom.value = "";
    }
  });
  // One key per page view: a double click on Continue opens one checkout, not two.
  form.addEventListener("submit", function () {
    var key = form.elements.submission, bytes = new Uint8Array(16);
    if (!key || key.value || !window.crypto) { return; }
    crypto.getRandomValues(bytes);
    key.value = Array.prototype.map.call(bytes, function (b) {
      return (b + 256).toString(16).slice(1);
    }).join("");
  });
  if (custom) {
    custom.addEventListener("input", function () {
      if (custom.value) {
        form.querySelectorAll('input[name="amount"]').forEach(function (r) { r.checked = false; });
      }
    });
  }
})();
