// Client-side helpers (served from assets/, nothing from the internet).
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  registry: {
    // SVG and PNG downloads of a figure card's graph, named like its CSV's page_figure_cut_date, with a
    // caption line under the figure: the registry, the data cut, the filters and n, as the banner shows them
    downloadSvg: function (nClicks, spec) { return window.registry_download(nClicks, spec, "svg"); },
    downloadPng: function (nClicks, spec) { return window.registry_download(nClicks, spec, "png"); },
    // the Tumour response page's "Open patient X" links: /patient/<id> + the query string (data cut,
    // filters); hidden when no patient is followed
    openPatientLinks: function (patient, search) {
      if (!patient) {
        const hidden = {display: "none"};
        return ["", "", hidden, "", "", hidden];
      }
      const href = "/patient/" + encodeURIComponent(String(patient)) + (search || "");
      const text = "Open patient " + patient + " \u2192";
      return [href, text, {}, href, text, {}];
    },
    // the patient view's Back button: the page the browser came from, else the overview (query kept)
    back: function (nClicks) {
      if (nClicks) {
        if (window.history.length > 1) { window.history.back(); }
        else { window.location.assign("/" + window.location.search); }
      }
      return window.dash_clientside.no_update;
    }
  }
});

// The caption of a downloaded figure, read from the banner the page shows: "HCC DEB-TACE Registry ·
// Data cut 2025-12-31 · cut-off 31 Dec 2025 · BCLC: B, Sex: F · 593 of 600 patients".
window.registry_caption = function () {
  const text = (id) => ((document.getElementById(id) || {}).textContent || "").trim();
  const chips = Array.from(document.querySelectorAll("#filter-chips .filter-chip"))
    .map((chip) => (chip.getAttribute("aria-label") || "").replace(/^Remove filter /, ""));
  return ["HCC DEB-TACE Registry", text("banner-cutoff"), chips.length ? chips.join(", ") : "no filter",
          text("banner-count")].filter(Boolean).join(" · ");
};

window.registry_download = function (nClicks, spec, format) {
  const noUpdate = window.dash_clientside.no_update;
  if (!nClicks || !spec || !window.Plotly) { return noUpdate; }
  const holder = document.getElementById(JSON.stringify({figure: spec.figure, type: "figure"}));
  const gd = holder && holder.querySelector(".js-plotly-plot");
  if (!gd || !gd._fullLayout) { return noUpdate; }
  // a copy of the figure, 36 px taller, the caption in the new space under the x axis
  const full = gd._fullLayout;
  const layout = JSON.parse(JSON.stringify(gd.layout || {}));
  const bottom = full.margin.b;
  layout.margin = Object.assign({}, layout.margin || {}, {b: bottom + 36});
  layout.height = full.height + 36;
  layout.width = full.width;
  layout.annotations = (layout.annotations || []).concat([{
    text: window.registry_caption(), xref: "paper", yref: "paper", x: 0, y: 0, xanchor: "left",
    yanchor: "top", yshift: -(bottom + 12), showarrow: false, align: "left",
    font: {size: 11, color: "#333"}}]);
  window.Plotly.toImage({data: gd.data, layout: layout}, {format: format, width: layout.width,
                                                          height: layout.height, scale: format === "png" ? 2 : 1})
    .then(function (url) {
      const link = document.createElement("a");
      link.href = url;
      link.download = spec.filename + "." + format;
      document.body.appendChild(link);
      link.click();
      link.remove();
    });
  return noUpdate;
};

// A session that ended while the page was open (idle timeout, sign-out in another tab) gets its
// callbacks answered 401: load this view again, which the server sends through the sign-in form
// (or the proxy's) and back here, instead of leaving stale cards. At most once every 10 s.
(function () {
  const fetchOriginal = window.fetch;
  if (!fetchOriginal) { return; }
  window.fetch = function (input) {
    return fetchOriginal.apply(this, arguments).then(function (response) {
      const url = typeof input === "string" ? input : (input && input.url) || "";
      if (response.status === 401 && url.indexOf("_dash-update-component") !== -1) {
        const last = Number(window.sessionStorage.getItem("registry-reloaded-at") || 0);
        if (Date.now() - last > 10000) {
          window.sessionStorage.setItem("registry-reloaded-at", String(Date.now()));
          window.location.assign(window.location.pathname + window.location.search);
        }
      }
      return response;
    });
  };
})();

// A table drawn by one Dash component (dashboard/components.py RowsTable): header cells, rows of
// text, a class per column and the columns shown bold. As html components a table is a Dash
// component per cell, and the renderer runs a selector for every mounted component on every store
// update; here the cells are plain React elements.
window.registry_components = Object.assign({}, window.registry_components, {
  RowsTable: function RowsTable(props) {
    const h = window.React.createElement;
    const classes = props.column_classes || [];
    const strong = new Set(props.strong || []);
    const links = props.links || {};
    // a link column: prefix + the cell's text + the page's query string (the data cut and filters)
    function cell(value, j) {
      const text = strong.has(j) ? h("strong", null, value) : value;
      const prefix = links[String(j)];
      if (prefix === undefined || value === null || value === undefined || value === "") { return text; }
      return h("a", {href: prefix + encodeURIComponent(String(value)) + window.location.search}, text);
    }
    const head = h("thead", null, h("tr", null, (props.columns || []).map(function (label, j) {
      return h("th", {key: j, className: classes[j] || undefined}, label);
    })));
    const body = h("tbody", null, (props.rows || []).map(function (row, i) {
      return h("tr", {key: i}, row.map(function (value, j) {
        return h("td", {key: j, className: classes[j] || undefined}, cell(value, j));
      }));
    }));
    return h("table", {id: props.id, className: props.className, style: props.style}, head, body);
  }
});

// A static html subtree drawn by one Dash component (dashboard/components.py Static): its nodes are
// html components' JSON without a namespace ({type: "Td", props: {children, className, ...}}), so
// Dash's renderer does not mount each as a component of its own.
(function () {
  const ATTRIBUTES = new Set(["id", "className", "style", "colSpan", "rowSpan", "title", "scope", "href", "target",
                              "role"]);
  function attributes(props, key) {
    const out = {key: key};
    Object.keys(props || {}).forEach(function (name) {
      if (ATTRIBUTES.has(name) || name.indexOf("data-") === 0 || name.indexOf("aria-") === 0) { out[name] = props[name]; }
    });
    return out;
  }
  function draw(node, key) {
    if (node === null || node === undefined || typeof node !== "object") { return node; }
    if (Array.isArray(node)) { return node.map(function (child, i) { return draw(child, i); }); }
    const props = node.props || {};
    return window.React.createElement(String(node.type).toLowerCase(), attributes(props, key), draw(props.children));
  }
  window.registry_components = Object.assign({}, window.registry_components, {
    Static: function Static(props) {
      return window.React.createElement(props.tag || "div", attributes(props), draw(props.children));
    }
  });
})();
