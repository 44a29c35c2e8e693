// report.html's script (trtbench/html_report.py): builds every table and chart from the one JSON block.
// Values go into the page as textContent, never as HTML; chart hover text is entity-escaped for plotly.
(() => {
  "use strict";
  const D = JSON.parse(document.getElementById("trtbench-data").textContent);
  const at = Object.fromEntries(D.columns.map((c, j) => [c, j]));
  const value = (i, key) => (key in at ? D.rows[i][at[key]] : null);
  const chosen = {}; // filter column -> chosen value as text, "" for all
  const order = {}; // table id -> {key, dir}
  const missing = (v) => v === null || v === undefined || v === "";

  const fixed = (d) => new Intl.NumberFormat("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
  const RATE = fixed(2), FIXED4 = fixed(4), COUNT = fixed(0);
  function format(v, kind) {
    if (missing(v)) return v === "" ? "" : "-";
    if (typeof v !== "number" || kind === "text") return String(v);
    if (kind === "rate") return RATE.format(v);
    if (kind === "fixed4") return FIXED4.format(v);
    if (kind === "count") return COUNT.format(Math.trunc(v));
    if (kind === "tokens") { // report.md's ~8.6M, ~950K
      if (v >= 1e6) return "~" + (v / 1e6).toFixed(1) + "M";
      return v >= 1e3 ? "~" + (v / 1e3).toFixed(0) + "K" : String(Math.trunc(v));
    }
    if (Number.isInteger(v)) return COUNT.format(v);
    return Math.abs(v) >= 1 ? RATE.format(v) : String(Number(v.toPrecision(4)));
  }
  const byValue = (x, y) => (typeof x === "number" && typeof y === "number" ? x - y
    : String(x).localeCompare(String(y), "en", { numeric: true }));
  const passes = (i) => D.filters.every((k) => !chosen[k] || String(value(i, k)) === chosen[k]);
  const shownRows = () => D.rows.map((_, i) => i).filter(passes);

  function renderTable(t) {
    const state = order[t.id] || (order[t.id] = { key: null, dir: 1 });
    const pos = Object.fromEntries(t.columns.map((c, j) => [c.key, j]));
    const get = t.shared ? (r, key) => (key in t.extra ? t.extra[key][r.n] : value(r.i, key)) : (r, key) => r.v[pos[key]];
    let rows = t.rows.map((x, n) => (t.shared ? { i: x, n } : { v: x, n }));
    if (t.shared) rows = rows.filter((r) => passes(r.i));
    if (state.key !== null) {
      rows.sort((a, b) => {
        const x = get(a, state.key), y = get(b, state.key);
        if (missing(x) || missing(y)) return missing(x) - missing(y) || a.n - b.n; // empty cells last either way
        return byValue(x, y) * state.dir || a.n - b.n;
      });
    }
    const head = document.createElement("tr");
    for (const c of t.columns) {
      const th = document.createElement("th");
      th.textContent = c.title;
      th.tabIndex = 0;
      th.title = "sort by " + c.title;
      if (state.key === c.key) th.setAttribute("aria-sort", state.dir > 0 ? "ascending" : "descending");
      const sort = () => {
        state.dir = state.key === c.key ? -state.dir : 1;
        state.key = c.key;
        renderTable(t);
      };
      th.addEventListener("click", sort);
      th.addEventListener("keydown", (e) => { if (e.key === "Enter") sort(); });
      head.append(th);
    }
    const body = document.createElement("tbody");
    const limit = t.limit || rows.length;
    for (const r of rows.slice(0, limit)) {
      const tr = document.createElement("tr");
      if (t.shared && value(r.i, "status") && value(r.i, "status") !== "ok") tr.className = "failed";
      for (const c of t.columns) {
        const td = document.createElement("td");
        const v = get(r, c.key);
        td.textContent = format(v, c.kind);
        if (typeof v === "string" && v.length > 60) td.title = v; // the whole cause, where the cell cuts it
        if (typeof v === "number") td.className = "num";
        tr.append(td);
      }
      body.append(tr);
    }
    const thead = document.createElement("thead");
    thead.append(head);
    document.getElementById("table-" + t.id).replaceChildren(thead, body);
    const shown = document.getElementById("shown-" + t.id);
    shown.textContent = rows.length === 0 ? "No rows" + (t.shared && t.rows.length ? " pass the filters." : ".")
      : rows.length > limit ? `Showing ${limit.toLocaleString("en-US")} of ${rows.length.toLocaleString("en-US")} rows.`
        : "";
  }

  // ---- charts: plotly draws; every text it shows is escaped here (it reads a few tags in text)
  const esc = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  const cut = (s, n) => (s.length > n ? s.slice(0, n - 1) + "…" : s);
  function hover(i, chart, y) {
    const lines = ["<b>" + esc(value(i, "status") || value(i, "verdict") || "") + "</b> [" + esc(D.label) + "]"];
    for (const key of [...chart.hover, y]) {
      const kind = D.filters.includes(key) ? "text" : "num"; // an axis or length as the tables show it: 16384
      if (key in at && !missing(value(i, key))) lines.push(esc(D.titles[key]) + ": " + esc(format(value(i, key), kind)));
    }
    for (const key of ["cause", "borderline"]) {
      if (!missing(value(i, key))) lines.push(key + ": " + esc(cut(String(value(i, key)), 160)));
    }
    return lines.join("<br>");
  }
  const isOk = (i) => !("status" in at) || value(i, "status") === "ok";
  const config = { displaylogo: false, responsive: true };
  function axis(key, values) {
    const numbers = values.every((v) => typeof v === "number");
    const ticks = [...new Set(values)].sort(byValue); // few values (an axis, the lengths): a tick at each
    return {
      title: { text: D.titles[key] },
      type: numbers ? (["isl", "osl", "requests"].includes(key) ? "log" : "linear") : "category",
      ...(numbers && ticks.length <= 20 ? { tickvals: ticks, ticktext: ticks.map(String) } : {}),
    };
  }

  function heatmap(chart, rows) {
    const xs = [...new Set(rows.map((i) => value(i, chart.x)))].sort(byValue);
    const ys = [...new Set(rows.map((i) => value(i, chart.y)))].sort(byValue);
    const cells = new Map();
    for (const i of rows) {
      const key = value(i, chart.x) + "|" + value(i, chart.y);
      const cell = cells.get(key) || cells.set(key, { best: null, n: 0, failed: [] }).get(key);
      cell.n += 1;
      const z = value(i, chart.z);
      if (isOk(i) && typeof z === "number") {
        if (cell.best === null || z > value(cell.best, chart.z)) cell.best = i;
      } else cell.failed.push(i);
    }
    const z = ys.map(() => xs.map(() => null)), text = ys.map(() => xs.map(() => ""));
    const marks = { x: [], y: [], text: [], hovertext: [] };
    ys.forEach((y, r) => xs.forEach((x, c) => {
      const cell = cells.get(x + "|" + y);
      if (!cell) return;
      if (cell.best !== null) {
        z[r][c] = value(cell.best, chart.z);
        text[r][c] = hover(cell.best, chart, chart.z) + (cell.n > 1 ? `<br>best of ${cell.n} points here` : "");
      } else {
        marks.x.push(String(x)); marks.y.push(String(y));
        marks.text.push(esc(value(cell.failed[0], "status") || "failed"));
        marks.hovertext.push(cell.failed.slice(0, 3).map((i) => hover(i, chart, chart.z)).join("<br>—<br>"));
      }
    }));
    const traces = [{
      type: "heatmap", x: xs.map(String), y: ys.map(String), z, text, hoverinfo: "text", colorscale: "Viridis",
      colorbar: { title: { text: D.titles[chart.z] } }, hoverongaps: false,
      ...(xs.length * ys.length <= 144 ? { texttemplate: "%{z:" + chart.cell + "}" } : {}),
    }, {
      type: "scatter", mode: "markers+text", name: "failed", x: marks.x, y: marks.y, text: marks.text,
      hovertext: marks.hovertext, hoverinfo: "text", textposition: "bottom center",
      marker: { symbol: "x", size: 14, color: "#c0392b" },
    }];
    const layout = {
      xaxis: { title: { text: D.titles[chart.x] + " [" + D.label + "]" }, type: "category" },
      yaxis: { title: { text: D.titles[chart.y] }, type: "category" }, showlegend: false,
      margin: { t: 20 }, height: 520,
    };
    Plotly.react("plot-" + chart.id, traces, layout, config);
  }

  function versus(chart, rows, x) {
    const groups = [["ok", (i) => isOk(i) && missing(value(i, "borderline")), "circle", "#2c7fb8"],
      ["borderline", (i) => isOk(i) && !missing(value(i, "borderline")), "diamond", "#e69f00"],
      ["failed (drawn at 0)", (i) => !isOk(i), "x", "#c0392b"]];
    const traces = groups.map(([name, member, symbol, color]) => {
      const its = rows.filter(member);
      return {
        type: "scatter", mode: "markers", name, x: its.map((i) => value(i, x)),
        y: its.map((i) => (isOk(i) ? value(i, chart.y) : 0)), hovertext: its.map((i) => hover(i, chart, chart.y)),
        hoverinfo: "text", marker: { symbol, color, size: 8, opacity: 0.8 },
      };
    });
    const layout = {
      xaxis: axis(x, rows.map((i) => value(i, x))), yaxis: { title: { text: D.titles[chart.y] + " [" + D.label + "]" } },
      margin: { t: 20 }, height: 480, legend: { orientation: "h" },
    };
    Plotly.react("plot-" + chart.id, traces, layout, config);
  }

  const pick = {}; // scatter chart id -> its x column
  function renderChart(chart) {
    const rows = shownRows();
    if (chart.kind === "heatmap") return heatmap(chart, rows);
    if (!pick[chart.id]) {
      pick[chart.id] = chart.xs[0];
      const select = document.createElement("select");
      select.setAttribute("aria-label", "x axis");
      for (const key of chart.xs) select.append(new Option(D.titles[key], key));
      select.addEventListener("change", () => { pick[chart.id] = select.value; renderChart(chart); });
      const heading = document.querySelector(`#chart-${chart.id} h2`);
      heading.insertBefore(select, heading.querySelector(".label"));
    }
    return versus(chart, rows, pick[chart.id]);
  }

  function renderAll() {
    D.tables.forEach(renderTable);
    D.charts.forEach(renderChart);
  }

  const nav = document.getElementById("filters");
  for (const key of D.filters) {
    const values = [...new Set(D.rows.map((_, i) => value(i, key)))].filter((v) => !missing(v)).sort(byValue);
    const label = document.createElement("label");
    const select = document.createElement("select");
    select.name = key;
    select.append(new Option("all", ""));
    for (const v of values) select.append(new Option(format(v, "text"), String(v)));
    select.addEventListener("change", () => { chosen[key] = select.value; renderAll(); });
    label.append(D.titles[key] + " ", select);
    nav.append(label);
  }
  if (D.filters.length) nav.prepend("Filter: ");
  renderAll();
})();
