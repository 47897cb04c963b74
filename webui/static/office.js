// The office's live page: follows the test it started on a station, through GET /live/stations/{id}/current
// (the office asks the station). No framework, no build step.
(function () {
  "use strict";
  const started = document.getElementById("started");
  const out = document.getElementById("remote-state");
  if (!started || !out) return;
  const station = started.dataset.station;
  const trial = Number(started.dataset.trial);
  let timer = null;
  async function poll() {
    try {
      const res = await fetch("/live/stations/" + encodeURIComponent(station) + "/current",
                              { headers: { "Accept": "application/json" } });
      const s = await res.json();
      if (!res.ok) throw new Error(s.detail || ("HTTP " + res.status));
      if (s.trial_id === trial && s.running) {
        out.textContent = "Now: " + s.state + (s.instruction ? " (" + s.instruction + ")" : "")
          + ", " + Math.round(s.elapsed_s || 0) + " s.";
      } else {
        out.textContent = "The test has ended: its result is on the trial's page.";
        clearInterval(timer);
      }
    } catch (err) {
      out.textContent = "The station does not answer now (" + err.message + ").";
    }
  }
  poll();
  timer = setInterval(poll, 1000);
})();
