// Live progress of a delivery on the admin's send page: polls the JSON status endpoint and
// updates the counts, the summary and the edition's status together, so that the page never
// says "Sending" beside a finished count. Stops polling once the delivery is done or paused.
(function () {
  "use strict";
  var section = document.querySelector("[data-progress-url]");
  if (!section) return;
  var url = section.getAttribute("data-progress-url");
  var bar = section.querySelector("progress");
  var editionStatus = document.querySelector("[data-edition-status]");
  function show(data) {
    Object.keys(data).forEach(function (key) {
      var el = section.querySelector('[data-field="' + key + '"]');
      if (el) el.textContent = data[key] === null ? "—" : data[key];
    });
    if (editionStatus && data.edition_status_label) editionStatus.textContent = data.edition_status_label;
    if (bar) { bar.max = data.total || 1; bar.value = data.sent; }
  }
  function update() {
    fetch(url, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        show(data);
        if (data.status === "sending") setTimeout(update, 2000);
        else if (data.status === "done") {
          // The pause button no longer applies.
          var pause = section.querySelector('button[value="pause"]');
          if (pause) pause.remove();
        }
      })
      .catch(function () { setTimeout(update, 5000); });
  }
  setTimeout(update, 1000);
})();
