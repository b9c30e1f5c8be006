// Client-side helpers (served from assets/, nothing from the internet).
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  registry: {
    // SVG download of a figure card's graph, named like the PNG: page_figure_snapshot_date.svg
    downloadSvg: function (nClicks, spec) {
      const noUpdate = window.dash_clientside.no_update;
      if (!nClicks || !spec) { return noUpdate; }
      const graphId = JSON.stringify({figure: spec.figure, type: "figure"});
      const holder = document.getElementById(graphId);
      const gd = holder && holder.querySelector(".js-plotly-plot");
      if (gd && window.Plotly) {
        window.Plotly.downloadImage(gd, {format: "svg", filename: spec.filename, scale: 1});
      }
      return noUpdate;
    }
  }
});
