// Operator: the cluster as a heatmap of nodes (state and chips in use) grouped by pool,
// block and group; the queue with pending reasons; drain and resume.
import { act, api, apiAll, cards, field, h, needsRole, rerender, section, table, when } from '../app.js';

let selected = '';

function useClass(fraction) {
  if (fraction <= 0) return 'use-0';
  if (fraction < 0.5) return 'use-1';
  if (fraction < 1) return 'use-2';
  return 'use-3';
}

function heatmap(nodes, busy, onPick) {
  const groups = new Map();
  for (const node of nodes) {
    const key = `${node.pool} · block ${node.block} · group ${node.group}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(node);
  }
  return h('div', { class: 'heatmap' }, [...groups.entries()].map(([key, members]) =>
    h('div', { class: 'heat-group', role: 'group', 'aria-label': key },
      h('h4', {}, key),
      h('ul', { class: 'heat-nodes' }, members.map((node) => {
        const used = busy.get(node.name) || 0;
        const label = `${node.name}: ${node.state}, ${used} of ${node.chips} chips in use`;
        return h('li', {}, h('button', {
          type: 'button',
          class: `heat-node state-${node.state} ${useClass(used / node.chips)}`,
          title: label,
          'aria-label': label,
          'aria-pressed': String(node.name === selected),
          'data-node': node.name,
          onclick: () => onPick(node.name),
        }, node.state === 'up' ? '' : node.state === 'draining' ? 'D' : 'X'));
      })))));
}

function nodeForm(nodes) {
  const input = h('input', { type: 'text', id: 'node-name', list: 'node-names', value: selected, required: true, autocomplete: 'off' });
  const send = (action) => async (event) => {
    event.preventDefault();
    const name = input.value.trim();
    if (!name) return;
    selected = name;
    if (await act(`${action === 'drain' ? 'Drain' : 'Resume'} ${name}`, () =>
      api(`/v1/cluster/nodes/${encodeURIComponent(name)}/${action}`, { method: 'POST', body: {} }))) {
      await rerender();
    }
  };
  const form = h('form', { class: 'stack', id: 'node-form', 'aria-label': 'Drain or resume a node' },
    ...field('Node', input),
    h('datalist', { id: 'node-names' }, nodes.slice(0, 2000).map((n) => h('option', { value: n.name }))),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', id: 'drain-button' }, 'Drain'), ' ',
      h('button', { type: 'button', class: 'secondary', id: 'resume-button', onclick: send('resume') }, 'Resume')));
  form.addEventListener('submit', send('drain'));
  return { form, input };
}

export async function render() {
  const refused = needsRole(['operator', 'admin']);
  if (refused) return refused;
  const [nodes, partitions, running, pending] = await Promise.all([
    apiAll('/v1/cluster/nodes', {}, 50000),
    api('/v1/cluster/partitions'),
    apiAll('/v1/jobs', { state: 'running' }, 20000),
    api('/v1/jobs', { query: { state: 'pending', limit: 500 } }),
  ]);
  // Chips in use per node, from the running jobs' placements (a gang's chips are spread
  // evenly over its nodes).
  const busy = new Map();
  for (const job of running) {
    for (const node of job.nodes) busy.set(node, (busy.get(node) || 0) + job.chips / job.nodes.length);
  }
  const { form, input } = nodeForm(nodes);
  const pick = (name) => {
    selected = name;
    input.value = name;
    for (const button of document.querySelectorAll('.heat-node')) {
      button.setAttribute('aria-pressed', String(button.dataset.node === name));
    }
    input.focus();
  };
  const counts = (state) => nodes.filter((n) => n.state === state).length;
  return [
    cards([
      ['Chips in use', `${partitions.chips_busy ?? 0} / ${partitions.chips_up ?? 0}`],
      ['Jobs running', String(running.length)],
      ['Jobs waiting', String(partitions.jobs_waiting ?? 0)],
      ['Nodes up', String(counts('up'))],
      ['Draining', String(counts('draining'))],
      ['Down', String(counts('down'))],
    ]),
    section('Cluster',
      h('ul', { class: 'legend', 'aria-label': 'Legend' },
        h('li', {}, h('span', { class: 'heat-node use-0' }), 'idle'),
        h('li', {}, h('span', { class: 'heat-node use-1' }), 'under half in use'),
        h('li', {}, h('span', { class: 'heat-node use-2' }), 'half or more'),
        h('li', {}, h('span', { class: 'heat-node use-3' }), 'full'),
        h('li', {}, h('span', { class: 'heat-node state-draining' }), 'draining (D)'),
        h('li', {}, h('span', { class: 'heat-node state-down' }), 'down (X)')),
      heatmap(nodes, busy, pick),
      form),
    section('Nodes not up', table('Draining or down', [
      ['Node', (n) => n.name],
      ['Pool', (n) => n.pool],
      ['State', (n) => n.state],
    ], nodes.filter((n) => n.state !== 'up'), { empty: 'every node is up' })),
    section('Queue', table(`Pending jobs (first ${pending.items.length})`, [
      ['Job', (j) => j.id],
      ['Grant', (j) => j.grant],
      ['Class', (j) => j.class],
      ['Chips', (j) => j.chips, { num: true }],
      ['Walltime (s)', (j) => j.walltime_s, { num: true }],
      ['Pending reason', (j) => j.reason || 'waiting for resources'],
      ['Submitted', (j) => when(j.submitted_us)],
    ], pending.items, { empty: 'nothing waiting' })),
    section('Partitions', table('Partitions', [
      ['Partition', (p) => p.name],
      ['Classes', (p) => p.classes.join(', ')],
      ['Chips per job max', (p) => p.chips_per_job_max, { num: true }],
      ['Walltime max (s)', (p) => p.walltime_max_s, { num: true }],
    ], partitions.items)),
  ];
}
