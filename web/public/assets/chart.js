// Charts with uPlot (npm, copied to /assets/vendor by scripts/web-build.sh). uPlot sets
// element styles through the CSSOM, which the page's CSP allows; its stylesheet is a file.
let loaded = null;

async function uPlotModule() {
  if (!loaded) {
    if (!document.querySelector('link[data-uplot]')) {
      const link = document.createElement('link');
      link.rel = 'stylesheet';
      link.href = '/assets/vendor/uPlot.min.css';
      link.dataset.uplot = '';
      document.head.append(link);
    }
    loaded = import('/assets/vendor/uPlot.esm.js').then((m) => m.default);
  }
  return loaded;
}

const COLOURS = ['#0b5cad', '#c2410c', '#17663a', '#7e22ce', '#a4161a', '#0e7490', '#8a5300', '#4a5360'];

// A line chart: x in unix seconds, series [{label, values}]. The figure carries a text
// summary for screen readers; the data is also in a table on every page that draws one.
export async function lineChart({ title, x, series, yLabel, width = 760, height = 260, stepped = false, summary }) {
  const uPlot = await uPlotModule();
  const figure = document.createElement('figure');
  figure.className = 'chart';
  const caption = document.createElement('figcaption');
  caption.textContent = title;
  figure.append(caption);
  const holder = document.createElement('div');
  holder.setAttribute('role', 'img');
  holder.setAttribute('aria-label', summary || title);
  figure.append(holder);
  const paths = stepped ? uPlot.paths.stepped({ align: 1 }) : undefined;
  const options = {
    width,
    height,
    scales: { x: { time: true } },
    axes: [{}, { label: yLabel, size: 70 }],
    series: [
      {},
      ...series.map((s, i) => ({ label: s.label, stroke: COLOURS[i % COLOURS.length], width: 2, paths })),
    ],
  };
  // eslint-disable-next-line no-new
  new uPlot(options, [x, ...series.map((s) => s.values)], holder);
  return figure;
}
