// Refreshes the station page from GET /api/v1/status. No framework, no build step.
(function () {
  "use strict";
  const fields = ["sample_rate_hz", "frames", "dropped_frames", "glitch_frames", "discarded_reads",
                  "faults", "fz_n", "body_weight_kg", "cop_ml_mm", "cop_ap_mm", "last_fault",
                  "zero_drift_total_n", "rezero_count", "last_rezero_at"];
  const cop = document.getElementById("cop");
  const oneDecimal = new Set(["fz_n", "body_weight_kg", "cop_ml_mm", "cop_ap_mm"]);
  function show(id, value) {
    const el = document.getElementById(id);
    if (el) el.textContent = value === null || value === undefined ? "–" : String(value);
  }
  async function refresh() {
    try {
      const res = await fetch("/api/v1/status", { headers: { "Accept": "application/json" } });
      if (!res.ok) throw new Error("HTTP " + res.status);
      const s = await res.json();
      fields.forEach((f) => show(f, oneDecimal.has(f) && s[f] !== null ? s[f].toFixed(1) : s[f]));
      show("acquiring", s.acquiring ? "running" : "stopped");
      show("occupancy", s.occupied ? "Someone is on the plate." : "Nobody on the plate.");
      if (s.cop_ml_mm === null) {
        cop.setAttribute("visibility", "hidden");
      } else {
        cop.setAttribute("cx", s.cop_ml_mm);
        cop.setAttribute("cy", s.cop_ap_mm);
        cop.setAttribute("visibility", "visible");
      }
      const w = document.getElementById("warnings");
      w.replaceChildren(...s.warnings.map((t) => { const p = document.createElement("p"); p.className = "warning"; p.textContent = t; return p; }));
    } catch (err) {
      show("acquiring", "no answer from the station (" + err.message + ")");
    }
  }
  setInterval(refresh, 250);
})();
