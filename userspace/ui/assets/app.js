// provd UI: the little the server-rendered pages need in the browser. No build step.
"use strict";
(function () {
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

  // htmx requests carry the session's CSRF token.
  document.addEventListener("htmx:configRequest", (e) => {
    e.detail.headers["X-CSRF-Token"] = csrf();
  });

  // Buttons with data-confirm ask first.
  document.addEventListener("submit", (e) => {
    const b = e.submitter;
    if (b && b.dataset.confirm && !window.confirm(b.dataset.confirm)) e.preventDefault();
  });

  // Click a column header of a .sortable table: sort this page's rows by it (numbers as numbers).
  document.addEventListener("click", (e) => {
    const th = e.target.closest("table.sortable th");
    if (!th) return;
    const table = th.closest("table");
    const body = table.tBodies[0];
    if (!body) return;
    const i = Array.from(th.parentNode.children).indexOf(th);
    const asc = th.dataset.sort !== "asc";
    table.querySelectorAll("th").forEach((h) => delete h.dataset.sort);
    th.dataset.sort = asc ? "asc" : "desc";
    const key = (tr) => {
      const cell = tr.children[i];
      if (!cell) return "";
      const t = cell.querySelector("time");
      if (t) return t.getAttribute("datetime");
      return cell.textContent.trim();
    };
    const rows = Array.from(body.rows);
    rows.sort((a, b) => {
      const x = key(a), y = key(b);
      const nx = parseFloat(x), ny = parseFloat(y);
      const c = !isNaN(nx) && !isNaN(ny) && /^[\d.\s-]+$/.test(x + y) ? nx - ny : x.localeCompare(y);
      return asc ? c : -c;
    });
    rows.forEach((r) => body.appendChild(r));
  });

  // Bulk import: the chosen file's bytes to the UI, which hands them to the API's import job.
  document.addEventListener("click", async (e) => {
    const b = e.target.closest("button[data-import]");
    if (!b) return;
    const file = document.getElementById("import-file")?.files?.[0];
    const out = document.querySelector(b.dataset.target);
    if (!file) { out.textContent = "Choose a file first."; return; }
    const lines = /\.(jsonl|ndjson)$/i.test(file.name);
    b.disabled = true;
    try {
      const r = await fetch(b.dataset.import, {
        method: "POST",
        headers: { "Content-Type": lines ? "application/x-ndjson" : "application/json", "X-CSRF-Token": csrf() },
        body: file,
        credentials: "same-origin",
      });
      out.innerHTML = await r.text();
      if (window.htmx) window.htmx.process(out);
    } catch (err) {
      out.textContent = "Upload failed: " + err;
    } finally {
      b.disabled = false;
    }
  });

  // The dashboard's chart: rates over the last minutes, refreshed every 2 s.
  function chart() {
    const el = document.getElementById("rate-chart");
    if (!el || !window.uPlot) return;
    const keys = ["dhcp", "tftp", "mta", "cwmp"];
    const colours = ["#2563eb", "#16a34a", "#d97706", "#9333ea"];
    let plot = null;
    const draw = async () => {
      try {
        const r = await fetch(el.dataset.series, { credentials: "same-origin" });
        if (!r.ok) return;
        const s = await r.json();
        const data = [s.t, ...keys.map((k) => s[k])];
        if (!plot) {
          plot = new window.uPlot({
            width: Math.max(400, el.clientWidth - 10),
            height: 220,
            series: [{}, ...keys.map((k, i) => ({ label: k + "/s", stroke: colours[i], width: 2 }))],
            axes: [{}, { label: "per second" }],
          }, data, el);
        } else {
          plot.setData(data);
        }
      } catch (_) { /* the next tick tries again */ }
    };
    draw();
    setInterval(draw, 2000);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", chart);
  else chart();
})();
