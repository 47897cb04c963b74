// The live page: COP and force from /live/stream (server-sent events), the running test, its result.
// No framework, no build step. Starting and aborting post the page's forms with fetch (the CSRF token
// is in them); without JavaScript the same forms post normally.
(function () {
  "use strict";
  const root = document.getElementById("live-root");
  if (!root) return;
  const $ = (id) => document.getElementById(id);
  const cop = $("cop"), trail = $("trail");
  const trailPoints = [];
  const TRAIL_LEN = 40;
  let lastTrialId = null, lastEventCount = 0, shownResultFor = null, lastSide = null, lastPatient = null;

  function text(id, value) {
    const el = $(id);
    if (el) el.textContent = value === null || value === undefined ? "–" : String(value);
  }
  function num(v, digits) {
    return v === null || v === undefined ? "–" : Number(v).toFixed(digits).replace("-", "\u2212");
  }
  function pretty(state) {
    return String(state || "").replace(/[_-]/g, " ").replace(/^./, (c) => c.toUpperCase());
  }

  function showPlate(m) {
    text("fz_n", m.fz_n === null ? "–" : num(m.fz_n, 0));
    text("body_weight_kg", m.body_weight_n ? num(m.body_weight_n / 9.80665, 1) : "–");
    text("cop_ml_mm", num(m.cop_ml_mm, 1));
    text("cop_ap_mm", num(m.cop_ap_mm, 1));
    if (m.cop_ml_mm === null || m.cop_ml_mm === undefined) {
      cop.setAttribute("visibility", "hidden");
      trailPoints.length = 0;
    } else {
      cop.setAttribute("cx", m.cop_ml_mm);
      cop.setAttribute("cy", m.cop_ap_mm);
      cop.setAttribute("visibility", "visible");
      trailPoints.push(m.cop_ml_mm + "," + m.cop_ap_mm);
      if (trailPoints.length > TRAIL_LEN) trailPoints.shift();
    }
    trail.setAttribute("points", trailPoints.join(" "));
  }

  function showFeet(t) {
    const side = t && t.running && t.stance_side;
    ["left", "right"].forEach((s) => {
      const el = $("foot-" + s);
      if (el) el.classList.toggle("stance", side === s);
    });
  }

  function addEvents(events) {
    const list = $("events");
    events.forEach((e) => {
      if (e.kind === "state") return;  // the runner's internal state changes: the state line shows them
      const li = document.createElement("li");
      const t = e.t_s === null || e.t_s === undefined ? "" : num(e.t_s, 1) + " s: ";
      li.textContent = t + (e.message || e.kind);
      list.appendChild(li);
    });
    list.scrollTop = list.scrollHeight;
  }

  const RESULT_ROWS = [
    ["hold_time_s", "Hold time", "s", 1],
    ["completed", "Completed 30 s", "", null],
    ["touchdowns", "Touchdowns", "count", 0],
    ["support_time_s", "Hand support time", "s", 1],
    ["mean_velocity_mm_s", "Sway velocity", "mm/s", 1],
    ["ellipse95_area_mm2", "95 % ellipse area", "mm²", 0],
    ["score", "Drill score", "points", 0],
    ["success_pct", "Successful attempts", "%", 0],
    ["level", "Level reached", "level", 0],
  ];

  // why a test ended without a score, for the page (the controller's detail, else the outcome)
  function endReason(t) {
    const detail = String(t.detail || t.error || "").trim();
    return detail || (t.outcome === "incomplete" ? "too short to score" : "stopped before its end");
  }

  function showResult(t) {
    const box = $("result");
    if (!t || t.running || !t.trial_id || (!t.result && !t.outcome)) {
      if (t && t.running) box.classList.add("hidden");
      return;
    }
    if (shownResultFor === t.trial_id) return;
    shownResultFor = t.trial_id;
    const complete = t.outcome === "complete";
    const body = $("result-table").querySelector("tbody");
    body.replaceChildren();
    if (t.result) {
      RESULT_ROWS.forEach(([key, label, unit, digits]) => {
        const v = t.result[key];
        if (v === undefined || v === null) return;
        const tr = document.createElement("tr");
        tr.dataset.key = key;
        const cells = [label, digits === null ? (v ? "yes" : "no") : num(v, digits), unit];
        cells.forEach((c, i) => {
          const td = document.createElement(i === 0 ? "th" : "td");
          if (i === 0) td.scope = "row";
          if (i === 1) td.className = "num";
          td.textContent = c;
          tr.appendChild(td);
        });
        body.appendChild(tr);
      });
    }
    const side = t.stance_side ? ", " + t.stance_side + " leg" : "";
    // a test that did not end on its own is not a result: amber, said so, no empty table, no "other leg"
    box.classList.toggle("stopped", !complete);
    text("result-title", complete ? "Result" + side
      : (t.outcome === "incomplete" ? "Not scored" : "Test stopped") + side);
    const note = $("result-note");
    if (complete) {
      note.classList.add("hidden");
    } else {
      note.textContent = "Why: " + endReason(t) + ". " + (body.children.length
        ? "The figures cover only the part before it stopped."
        : "Nothing was measured to score; the recording so far is kept with the trial.");
      note.classList.remove("hidden");
    }
    $("result-table").classList.toggle("hidden", body.children.length === 0);
    const link = $("open-trial");
    link.href = "/trials/" + t.trial_id;
    link.dataset.trialId = t.trial_id;
    $("other-side").classList.toggle("hidden", !(complete && t.stance_side));
    box.classList.remove("hidden");
    box.dataset.trialId = t.trial_id;
  }

  function showTrial(t) {
    const abort = $("abort-button"), start = $("start-button");
    if (!t) {
      text("trial-state", "Live tests are not available");
      return;
    }
    if (t.trial_id !== lastTrialId) {
      lastTrialId = t.trial_id;
      lastEventCount = 0;
      $("events").replaceChildren();
    }
    if (t.events && t.events.length) addEvents(t.events);
    lastRunning = !!t.running;
    lastEventCount = t.event_count;
    if (t.running) {
      text("trial-state", pretty(t.state));
    } else if (t.trial_id && t.outcome === "complete") {
      text("trial-state", "Finished");
    } else if (t.trial_id) {
      text("trial-state", (t.outcome === "incomplete" ? "Not scored: " : "Stopped: ") + endReason(t));
    } else {
      text("trial-state", "No test running");
    }
    text("trial-instruction", t.instruction || "");
    if (t.patient) {
      text("trial-who", t.patient + " · " + t.protocol + (t.stance_side ? " · " + t.stance_side + " leg" : "")
        + (t.running && t.elapsed_s !== null ? " · " + num(t.elapsed_s, 0) + " s" : ""));
      lastSide = t.stance_side;
      lastPatient = t.patient;
    }
    const st = t.status || {};
    const meter = $("hold-meter");
    if (t.running && st.hold_elapsed_s !== null && st.hold_elapsed_s !== undefined) {
      const hold = st.hold_s || 30;
      meter.classList.remove("hidden");
      meter.querySelector("span").style.width = Math.min(100, 100 * st.hold_elapsed_s / hold) + "%";
      meter.setAttribute("aria-valuenow", num(st.hold_elapsed_s, 0));
      let extra = "";
      if (st.touchdowns) extra += " · touchdowns: " + st.touchdowns;
      if (st.supported_now) extra += " · hand support now";
      text("hold-text", "Holding " + num(st.hold_elapsed_s, 1) + " of " + num(hold, 0) + " s" + extra);
    } else if (t.running && st.countdown_remaining_s) {
      meter.classList.add("hidden");
      text("hold-text", "Countdown " + num(st.countdown_remaining_s, 0) + " s");
    } else {
      meter.classList.add("hidden");
      text("hold-text", t.error ? "Problem: " + t.error : "");
    }
    if (abort) abort.disabled = !t.running || offline;
    if (start && root.dataset.available === "yes") start.disabled = !!t.running || offline;
    showFeet(t);
    showResult(t);
  }

  // the station gone (stopped, network down): nothing stale may look live, nothing can be started
  let offline = false, lastMessageAt = Date.now(), lastRunning = false;
  const SILENCE_MS = 2500;  // the stream sends every 50 ms
  function setOffline(on) {
    if (on === offline) return;
    offline = on;
    $("offline").classList.toggle("hidden", !on);
    document.querySelectorAll("#plate, .big-number, #trial-h ~ *").forEach((el) => el.classList.toggle("stale", on));
    if (on) {
      showPlate({ fz_n: null, body_weight_n: null, cop_ml_mm: null, cop_ap_mm: null });
      text("stream-state", "not answering: reconnecting…");
      if (lastRunning) text("trial-state", "Not known: the station stopped answering during the test");
      text("hold-text", "");
      $("hold-meter").classList.add("hidden");
      const start = $("start-button"), abort = $("abort-button");
      if (start) start.disabled = true;
      if (abort) abort.disabled = true;
    } else {
      text("stream-state", "live");
    }
  }
  setInterval(() => { if (Date.now() - lastMessageAt > SILENCE_MS) setOffline(true); }, 500);

  // the stream
  let source = null;
  function connect() {
    source = new EventSource("/live/stream");
    source.onopen = () => text("stream-state", offline ? "reconnected: waiting for the plate…" : "live");
    source.onmessage = (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch (err) { return; }
      lastMessageAt = Date.now();
      setOffline(false);
      showPlate(m);
      showTrial(m.trial);
    };
    source.onerror = () => {
      if (Date.now() - lastMessageAt > 1000) setOffline(true);
      else text("stream-state", "reconnecting…");
    };
  }
  connect();
  window.addEventListener("pagehide", () => { if (source) source.close(); });

  // forms, posted with fetch
  const csrf = root.dataset.csrf;
  async function post(form) {
    const err = $("start-error");
    err.classList.add("hidden");
    try {
      const res = await fetch(form.action, {
        method: "POST", body: new FormData(form), credentials: "same-origin",
        headers: { "Accept": "application/json", "X-CSRF-Token": csrf },
      });
      const body = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error(body.detail || ("HTTP " + res.status));
      return body;
    } catch (e) {
      err.textContent = "Could not do it: " + e.message;
      err.classList.remove("hidden");
      return null;
    }
  }
  const startForm = $("start-form");
  if (startForm) {
    startForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      $("result").classList.add("hidden");
      const body = await post(startForm);
      if (body && body.trial_id) text("trial-state", "Starting trial " + body.trial_id + "…");
    });
    const sideSet = $("side-set");
    startForm.querySelectorAll('input[name="protocol"]').forEach((r) => r.addEventListener("change", () => {
      sideSet.disabled = startForm.querySelector('input[name="protocol"]:checked').dataset.sided !== "yes";
    }));
  }
  const abortForm = $("abort-form");
  if (abortForm) {
    abortForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      await post(abortForm);
    });
  }
  const other = $("other-side");
  if (other) {
    other.addEventListener("click", () => {
      const next = lastSide === "left" ? "right" : "left";
      const radio = $("side-" + next);
      if (radio) radio.checked = true;
      const sel = $("patient");
      if (sel && lastPatient) sel.value = lastPatient;
      $("result").classList.add("hidden");
      $("start-button").focus();
    });
  }
})();
