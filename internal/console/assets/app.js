// Switchboard console: reads one Server-Sent Events feed and draws the
// node's state. No framework, no build step; every value from the server
// goes into the page as text (textContent), never as HTML.
"use strict";
(function () {
  const base = document.body.dataset.base;
  const $ = (id) => document.getElementById(id);
  const WINDOW_SECONDS = 300; // the charts show the last five minutes
  const MAX_EVENT_ROWS = 500;

  let samples = [];
  let state = null;
  let selected = null; // JSON [namespace, key] of the connection shown in detail
  let paused = false;
  let source = null;

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function row(cells, numFrom) {
    const tr = document.createElement("tr");
    cells.forEach((c, i) => tr.appendChild(el("td", c, numFrom !== undefined && i >= numFrom ? "num" : "")));
    return tr;
  }
  function fill(tbody, rows, emptyText, cols) {
    tbody.replaceChildren();
    if (rows.length === 0) {
      const tr = document.createElement("tr");
      const td = el("td", emptyText, "empty");
      td.colSpan = cols;
      tr.appendChild(td);
      tbody.appendChild(tr);
      return;
    }
    rows.forEach((r) => tbody.appendChild(r));
  }
  const fmt = (n) => (n >= 100 ? Math.round(n).toString() : (Math.round(n * 10) / 10).toString());

  // --- the feed -----------------------------------------------------------
  function connect() {
    if (source) source.close();
    const q = new URLSearchParams();
    new FormData($("filters")).forEach((v, k) => { if (v) q.set(k, v); });
    const url = base + "/api/feed" + (q.toString() ? "?" + q : "");
    $("filter-error").hidden = true;
    $("status").textContent = "connecting…";
    $("status").className = "status off";
    source = new EventSource(url);
    source.onopen = () => setStatus(true);
    source.onerror = () => {
      setStatus(false);
      // A 400 (bad filter) or 401 closes the source for good: say why.
      if (source.readyState === EventSource.CLOSED) {
        fetch(url, { headers: { Accept: "application/json" } }).then((r) => {
          if (r.status === 401) return { error: "Signed out (or the token changed): reload the page to sign in again." };
          return r.ok ? null : r.json();
        }).then((j) => {
          if (j && j.error) { $("filter-error").textContent = j.error; $("filter-error").hidden = false; }
        }).catch(() => {});
      }
    };
    source.addEventListener("history", (e) => { samples = JSON.parse(e.data) || []; drawCharts(); });
    source.addEventListener("state", (e) => onState(JSON.parse(e.data)));
    source.addEventListener("dropped", (e) => { $("dropped").textContent = JSON.parse(e.data).dropped; });
    source.addEventListener("ev", (e) => { if (!paused) addEvent(JSON.parse(e.data)); });
  }
  function setStatus(on) {
    const s = $("status");
    s.textContent = on ? "live" : "disconnected";
    s.className = "status " + (on ? "on" : "off");
  }

  // --- state --------------------------------------------------------------
  function onState(st) {
    state = st;
    if (st.sample && (samples.length === 0 || samples[samples.length - 1].t < st.sample.t)) {
      samples.push(st.sample);
      if (samples.length > 1200) samples.splice(0, samples.length - 1200);
    }
    $("lost").textContent = st.lost;
    const s = st.sample || { connections: 0, messages_in: 0, deliveries: 0 };
    $("total-conns").textContent = s.connections;
    $("rate-in").textContent = fmt(s.messages_in);
    $("rate-out").textContent = fmt(s.deliveries);
    drawTotals(st);
    drawChannels(st);
    drawPresence(st);
    drawConns(st);
    drawDetail();
    drawCharts();
    offerApps(st.forms);
  }

  function drawTotals(st) {
    const rows = st.totals.filter((t) => t.open > 0).map((t) => row([t.protocol, t.app || "—", t.open], 2));
    fill($("totals").tBodies[0], rows, "No open connections.", 3);
  }
  function drawChannels(st) {
    const rows = [];
    st.namespaces.forEach((ns) => ns.channels.forEach((ch) => rows.push(row([ns.protocol, ns.name, ch.name, ch.subscribers], 3))));
    fill($("channels").tBodies[0], rows, "No channel has a subscriber on this node.", 4);
  }
  function drawPresence(st) {
    const box = $("presence");
    box.replaceChildren();
    st.namespaces.forEach((ns) => (ns.presence || []).forEach((p) => {
      const d = el("div", null, "presence-set");
      d.appendChild(el("strong", ns.name + " / " + p.channel + " (" + p.members.length + ")"));
      const ul = document.createElement("ul");
      p.members.forEach((m) => ul.appendChild(el("li", m.user_id + (m.user_info ? " " + JSON.stringify(m.user_info) : ""))));
      d.appendChild(ul);
      box.appendChild(d);
    }));
    if (!box.firstChild) box.appendChild(el("p", "No presence channels.", "empty"));
  }
  function drawConns(st) {
    const rows = [];
    let hidden = 0;
    st.namespaces.forEach((ns) => {
      hidden += ns.connections - ns.listed;
      ns.conns.forEach((c) => {
        const tr = row([ns.protocol, ns.name, c.key, c.remote || "", c.channels.length, c.queued_bytes], 4);
        const id = JSON.stringify([ns.name, c.key]);
        tr.dataset.key = c.key;
        if (id === selected) tr.className = "selected";
        tr.addEventListener("click", () => { selected = id; drawConns(state); drawDetail(); });
        rows.push(tr);
      });
    });
    fill($("conns").tBodies[0], rows, "No connections.", 6);
    $("conns-note").textContent = hidden > 0 ? "(" + hidden + " more not listed)" : "";
  }
  function drawDetail() {
    const box = $("conn-detail");
    if (!state || !selected) return;
    let found = null, nsFound = null;
    state.namespaces.forEach((ns) => ns.conns.forEach((c) => { if (JSON.stringify([ns.name, c.key]) === selected) { found = c; nsFound = ns; } }));
    box.replaceChildren();
    if (!found) { box.appendChild(el("p", "That connection has closed.", "empty")); return; }
    const dl = document.createElement("dl");
    const add = (k, v) => { dl.appendChild(el("dt", k)); dl.appendChild(el("dd", v)); };
    add("Protocol", nsFound.protocol);
    add("App", nsFound.name);
    add("Connection", found.key);
    add("Transport id", found.id || "");
    add("Remote address", found.remote || "");
    add("Queued bytes", found.queued_bytes);
    add("Last read", found.last_read ? new Date(found.last_read).toLocaleTimeString() : "");
    add("Subscriptions", found.channels.length ? found.channels.join("\n") : "none");
    box.appendChild(dl);
  }

  // --- events -------------------------------------------------------------
  function addEvent(ev) {
    const tbody = $("events").tBodies[0];
    const tr = row([new Date(ev.t).toLocaleTimeString(), ev.protocol, ev.app, ev.channel, ev.event, ev.data, ev.bytes], 6);
    tr.dataset.event = ev.event;
    tbody.insertBefore(tr, tbody.firstChild);
    while (tbody.rows.length > MAX_EVENT_ROWS) tbody.deleteRow(-1);
  }

  // --- charts: hand-drawn on canvas ---------------------------------------
  function drawCharts() {
    const now = samples.length ? samples[samples.length - 1].t : Date.now();
    const from = now - WINDOW_SECONDS * 1000;
    const win = samples.filter((s) => s.t >= from);
    chart($("chart-conns"), from, now, [{ color: "#2563eb", values: win.map((s) => [s.t, s.connections]) }]);
    chart($("chart-msgs"), from, now, [
      { color: "#2563eb", values: win.map((s) => [s.t, s.messages_in]) },
      { color: "#d9480f", values: win.map((s) => [s.t, s.deliveries]) },
    ]);
  }
  function chart(canvas, from, to, series) {
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth || canvas.width, h = canvas.clientHeight || canvas.height;
    if (canvas.width !== w * ratio) { canvas.width = w * ratio; canvas.height = h * ratio; }
    const g = canvas.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, w, h);
    const pad = { l: 44, r: 8, t: 8, b: 20 };
    let top = 1;
    series.forEach((s) => s.values.forEach((v) => { top = Math.max(top, v[1]); }));
    top = niceCeil(top);
    const x = (t) => pad.l + ((t - from) / (to - from || 1)) * (w - pad.l - pad.r);
    const y = (v) => h - pad.b - (v / top) * (h - pad.t - pad.b);
    g.strokeStyle = "#e5e7eb"; g.fillStyle = "#67707c"; g.font = "11px system-ui, sans-serif"; g.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const v = (top * i) / 4, yy = Math.round(y(v)) + 0.5;
      g.beginPath(); g.moveTo(pad.l, yy); g.lineTo(w - pad.r, yy); g.stroke();
      g.textAlign = "right"; g.fillText(fmt(v), pad.l - 4, yy + 4);
    }
    g.textAlign = "left"; g.fillText("-" + Math.round((to - from) / 60000) + " min", pad.l, h - 5);
    g.textAlign = "right"; g.fillText("now", w - pad.r, h - 5);
    series.forEach((s) => {
      if (s.values.length === 0) return;
      g.strokeStyle = s.color; g.lineWidth = 1.8; g.beginPath();
      s.values.forEach((v, i) => (i ? g.lineTo(x(v[0]), y(v[1])) : g.moveTo(x(v[0]), y(v[1]))));
      g.stroke();
    });
  }
  function niceCeil(v) {
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  // --- publish form -------------------------------------------------------
  let offered = "";
  function offerApps(forms) {
    const key = JSON.stringify(forms);
    if (key === offered) return;
    offered = key;
    const sel = $("pub-app");
    sel.replaceChildren();
    forms.pusher_apps.forEach((a) => { const o = el("option", a); o.value = a; sel.appendChild(o); });
    $("pub-protocol").options[1].disabled = !forms.damon;
  }
  function protocolChanged() {
    const damon = $("pub-protocol").value === "damon";
    document.querySelectorAll(".pusher-only").forEach((e) => { e.hidden = damon; });
    document.querySelectorAll(".damon-only").forEach((e) => { e.hidden = !damon; });
  }
  async function publish(e) {
    e.preventDefault();
    const out = $("pub-result");
    const protocol = $("pub-protocol").value;
    const raw = $("pub-data").value;
    const body = { protocol, event: $("pub-event").value };
    if (protocol === "pusher") {
      body.app = $("pub-app").value;
      body.channel = $("pub-channel").value;
      body.data = raw; // Pusher data is a string
    } else {
      body.group = $("pub-group").value;
      try { body.data = raw === "" ? undefined : JSON.parse(raw); } catch (err) {
        out.textContent = "Damon data must be JSON: " + err.message; out.className = "bad"; return;
      }
    }
    out.textContent = "publishing…"; out.className = "";
    try {
      const r = await fetch(base + "/api/publish", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      const j = await r.json();
      out.textContent = r.ok ? "published" : "refused: " + j.error;
      out.className = r.ok ? "ok" : "bad";
    } catch (err) {
      out.textContent = "failed: " + err.message; out.className = "bad";
    }
  }

  $("filters").addEventListener("submit", (e) => { e.preventDefault(); connect(); });
  $("pause").addEventListener("click", () => { paused = !paused; $("pause").textContent = paused ? "Resume" : "Pause"; });
  $("clear").addEventListener("click", () => $("events").tBodies[0].replaceChildren());
  $("pub-protocol").addEventListener("change", protocolChanged);
  $("publish").addEventListener("submit", publish);
  window.addEventListener("resize", drawCharts);
  connect();
})();
