// Keeps a mailing's progress bar current without reloading the page: it asks the
// server for the numbers once a second until nothing is left to send.
(function () {
  "use strict";
  function duration(seconds) {
    if (seconds === null || seconds === undefined) { return "–"; }
    var h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
    var two = function (n) { return (n < 10 ? "0" : "") + n; };
    return (h > 0 ? h + ":" + two(m) : m) + ":" + two(s);
  }
  function watch(box) {
    var url = box.getAttribute("data-progress-url");
    var bar = box.querySelector("progress");
    var field = function (name) { return box.querySelector("[data-field=" + name + "]"); };
    function show(p) {
      var done = p.sent + p.failed;
      bar.max = Math.max(p.total, 1);
      bar.value = done;
      field("sent").textContent = p.sent;
      field("failed").textContent = p.failed;
      field("left").textContent = p.left;
      field("rate").textContent = p.per_second;
      field("eta").textContent = p.left === 0 ? "0:00" : duration(p.seconds_left);
      field("percent").textContent = p.total === 0 ? "100" : Math.floor(100 * done / p.total);
      box.setAttribute("data-left", p.left);
      if (p.left === 0) {
        document.querySelectorAll("[data-while-sending]").forEach(function (e) { e.hidden = true; });
      }
      return p.left > 0;
    }
    function poll() {
      fetch(url, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
        .then(function (r) { if (!r.ok) { throw new Error(r.status); } return r.json(); })
        .then(function (p) { if (show(p)) { setTimeout(poll, 1000); } })
        .catch(function () { setTimeout(poll, 5000); });
    }
    poll();
  }
  document.querySelectorAll("[data-progress-url]").forEach(watch);
})();
