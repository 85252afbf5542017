// Keeps the breach log's 72-hour clocks running: each element with data-deadline (Unix
// seconds) shows the hours and minutes left.
(function () {
  function tick() {
    document.querySelectorAll("[data-deadline]").forEach(function (el) {
      var left = Math.max(0, Math.floor((Number(el.dataset.deadline) * 1000 - Date.now()) / 60000));
      el.textContent = Math.floor(left / 60) + " h " + (left % 60) + " min";
    });
  }
  tick();
  setInterval(tick, 15000);
})();
