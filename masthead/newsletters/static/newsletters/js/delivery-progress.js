// Live progress of a delivery on the admin's send page: polls the JSON endpoint.
(function () {
  "use strict";
  var section = document.querySelector("[data-progress-url]");
  if (!section) return;
  var url = section.getAttribute("data-progress-url");
  var bar = section.querySelector("progress");
  function update() {
    fetch(url, { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        Object.keys(data).forEach(function (key) {
          var el = section.querySelector('[data-field="' + key + '"]');
          if (el) el.textContent = data[key] === null ? "—" : data[key];
        });
        if (bar) { bar.max = data.total || 1; bar.value = data.sent; }
        if (data.status === "sending") setTimeout(update, 2000);
      })
      .catch(function () { setTimeout(update, 5000); });
  }
  setTimeout(update, 1000);
})();
