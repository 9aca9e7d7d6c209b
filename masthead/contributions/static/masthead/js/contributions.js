/* The give form: when the frequency changes, pre-select that frequency's suggested amount;
   typing a custom amount clears the presets. Works without it (CSS shows the right presets). */
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
  if (custom) {
    custom.addEventListener("input", function () {
      if (custom.value) {
        form.querySelectorAll('input[name="amount"]').forEach(function (r) { r.checked = false; });
      }
    });
  }
})();
