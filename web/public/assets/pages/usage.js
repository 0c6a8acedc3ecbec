// Usage (XDMoD-like): utilisation over time, waits, chip-hours and credits by grant,
// institution, field, accelerator type or partition for any range; CSV export.
import { api, cards, credits, h, needsRole, section, table } from '../app.js';
import { lineChart } from '../chart.js';

const DAY_S = 86400;
let last = null; // the form's values, kept while the tab lives

function isoDay(unix) {
  return new Date(unix * 1000).toISOString().slice(0, 10);
}

function csvCell(value) {
  const text = String(value ?? '');
  return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

// The report as CSV: one row per step (group "all"), then one per group and step.
export function toCsv(report) {
  const rows = [['step_start_utc', 'group', 'chip_hours', 'credits', 'jobs', 'wait_mean_s', 'wait_p95_s', 'utilisation']];
  for (const step of report.steps) {
    rows.push([new Date(step.start * 1000).toISOString(), 'all', step.chip_hours, step.credits, step.jobs, step.wait_mean_s, step.wait_p95_s, step.utilisation]);
  }
  for (const group of report.groups) {
    rows.push(['total', group.key, group.chip_hours, group.credits, group.jobs, group.wait_mean_s, group.wait_p95_s, '']);
  }
  return rows.map((row) => row.map(csvCell).join(',')).join('\n') + '\n';
}

function download(name, text) {
  const url = URL.createObjectURL(new Blob([text], { type: 'text/csv' }));
  const link = h('a', { href: url, download: name });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function form(values, onSubmit) {
  const from = h('input', { type: 'date', name: 'from', value: values.from, required: true });
  const to = h('input', { type: 'date', name: 'to', value: values.to, required: true });
  const step = h('select', { name: 'step' }, ['hour', 'day', 'week'].map((s) => h('option', { value: s }, s)));
  step.value = values.step;
  const group = h('select', { name: 'group_by' }, ['grant', 'institution', 'field', 'accelerator', 'partition'].map((g) => h('option', { value: g }, g)));
  group.value = values.group_by;
  const element = h('form', { class: 'inline', id: 'usage-form', 'aria-label': 'Usage range' },
    h('label', {}, 'From (UTC)', from), h('label', {}, 'To (UTC, exclusive)', to),
    h('label', {}, 'Step', step), h('label', {}, 'Group by', group),
    h('button', { type: 'submit' }, 'Show'));
  element.addEventListener('submit', (event) => {
    event.preventDefault();
    onSubmit({ from: from.value, to: to.value, step: step.value, group_by: group.value });
  });
  return element;
}

async function report(values) {
  return api('/v1/usage', { query: { from: values.from, to: values.to, step: values.step, group_by: values.group_by } });
}

async function view(values, data) {
  const x = data.steps.map((s) => s.start);
  const charts = await Promise.all([
    lineChart({
      title: 'Utilisation (% of chips)',
      summary: `Utilisation over ${data.steps.length} steps; over the range ${(100 * data.totals.utilisation).toFixed(1)} %.`,
      x,
      series: [{ label: 'utilisation %', values: data.steps.map((s) => 100 * s.utilisation) }],
      yLabel: '%',
      width: 900,
      height: 220,
    }),
    lineChart({
      title: 'Waits (seconds, jobs started in the step)',
      summary: `Mean wait ${data.totals.wait_mean_s.toFixed(0)} s, 95th percentile ${data.totals.wait_p95_s} s over the range.`,
      x,
      series: [
        { label: 'mean wait', values: data.steps.map((s) => s.wait_mean_s) },
        { label: 'p95 wait', values: data.steps.map((s) => s.wait_p95_s) },
      ],
      yLabel: 's',
      width: 900,
      height: 220,
    }),
    lineChart({
      title: `Chip-hours by ${data.group_by} (largest ${data.groups.filter((g) => g.chip_hours_by_step).length})`,
      summary: `Chip-hours per step of the largest ${data.group_by} groups.`,
      x,
      series: data.groups.filter((g) => g.chip_hours_by_step).map((g) => ({ label: g.key, values: g.chip_hours_by_step })),
      yLabel: 'chip-hours',
      width: 900,
      height: 220,
    }),
  ]);
  const csvButton = h('button', {
    type: 'button',
    id: 'usage-csv',
    onclick: () => download(`atrium-usage-${values.from}-${values.to}-${values.group_by}.csv`, toCsv(data)),
  }, 'Export CSV');
  return [
    cards([
      ['Chip-hours', data.totals.chip_hours.toFixed(1)],
      ['Credits', credits(data.totals.credits)],
      ['Jobs started', String(data.totals.jobs)],
      ['Utilisation', `${(100 * data.totals.utilisation).toFixed(1)} %`],
      ['Mean wait (s)', data.totals.wait_mean_s.toFixed(0)],
      ['p95 wait (s)', String(data.totals.wait_p95_s)],
    ]),
    h('p', {}, csvButton),
    h('div', { class: 'charts' }, charts),
    table(`By ${data.group_by}`, [
      [data.group_by, (g) => g.key],
      ['Chip-hours', (g) => g.chip_hours.toFixed(1), { num: true }],
      ['Credits', (g) => credits(g.credits), { num: true }],
      ['Jobs', (g) => g.jobs, { num: true }],
      ['Mean wait (s)', (g) => g.wait_mean_s.toFixed(0), { num: true }],
      ['p95 wait (s)', (g) => g.wait_p95_s, { num: true }],
    ], data.groups.slice(0, 200), { empty: 'no usage in this range' }),
    table('Per step', [
      ['Step (UTC)', (s) => new Date(s.start * 1000).toISOString().slice(0, 16).replace('T', ' ')],
      ['Utilisation %', (s) => (100 * s.utilisation).toFixed(2), { num: true }],
      ['Chip-hours', (s) => s.chip_hours.toFixed(1), { num: true }],
      ['Credits', (s) => credits(s.credits), { num: true }],
      ['Jobs', (s) => s.jobs, { num: true }],
      ['Mean wait (s)', (s) => s.wait_mean_s.toFixed(0), { num: true }],
      ['p95 wait (s)', (s) => s.wait_p95_s, { num: true }],
    ], data.steps.slice(-400)),
  ];
}

export async function render() {
  const refused = needsRole(['operator', 'officer', 'admin']);
  if (refused) return refused;
  const now = Math.floor(Date.now() / 1000);
  const values = last || { from: isoDay(now - 13 * DAY_S), to: isoDay(now + DAY_S), step: 'day', group_by: 'grant' };
  const results = h('div', { id: 'usage-results', 'aria-live': 'polite' });
  const show = async (chosen) => {
    last = chosen;
    results.setAttribute('aria-busy', 'true');
    try {
      const data = await report(chosen);
      results.replaceChildren(...(await view(chosen, data)));
      results.dataset.totalChipHours = String(data.totals.chip_hours);
    } catch (error) {
      results.replaceChildren(h('p', { class: 'error-text', role: 'alert' }, error.describe ? error.describe() : error.message));
    } finally {
      results.removeAttribute('aria-busy');
    }
  };
  await show(values);
  return [section('Range', form(values, show)), results];
}
