// Researcher: my proposals, grants (with a burn-down), jobs, a job form, obligations.
import { act, api, apiAll, cards, credits, field, h, needsRole, programPath, rerender, section, session, table, when } from '../app.js';
import { lineChart } from '../chart.js';

const JOBS_SHOWN = 200;

// Credits over time for one grant: awarded, spent (cumulative, as runs were charged) and
// the balance; the last point adds what running jobs hold now (balance - available).
async function burnDown(grant, jobs, balance) {
  const ended = jobs
    .filter((j) => j.grant === grant.id && j.ended_s !== null && j.ended_s >= 0 && Number(j.charged) > 0)
    .sort((a, b) => a.ended_s - b.ended_s);
  const start = Math.floor(grant.start_us / 1e6);
  const now = Math.max(Math.floor(Date.now() / 1000), start + 1);
  const x = [start];
  const spent = [0];
  let sum = 0;
  for (const job of ended) {
    sum += Number(job.charged);
    x.push(Math.max(job.ended_s, start));
    spent.push(sum);
  }
  x.push(now);
  spent.push(Number(grant.spent));
  const awarded = x.map(() => Number(grant.awarded));
  const held = Number(balance.balance) - Number(balance.available);
  const committed = spent.map((s, i) => (i === spent.length - 1 ? s + held : s));
  return lineChart({
    title: `Grant ${grant.id}: credits over time`,
    summary: `Grant ${grant.id}: awarded ${credits(grant.awarded)}, spent ${credits(grant.spent)}, held by running jobs ${held.toFixed(2)}, balance ${credits(balance.balance)}.`,
    x,
    series: [
      { label: 'awarded', values: awarded },
      { label: 'spent + held by running jobs', values: committed },
      { label: 'spent', values: spent },
      { label: 'balance', values: spent.map((s) => Number(grant.awarded) - s) },
    ],
    yLabel: 'credits',
    stepped: true,
  });
}

function jobForm(grants) {
  const grant = h('select', { name: 'grant', required: true }, grants.map((g) => h('option', { value: g.id }, g.id)));
  const chips = h('input', { name: 'chips', type: 'number', min: 1, value: '16', required: true });
  const walltime = h('input', { name: 'walltime', type: 'number', min: 60, value: '3600', required: true });
  const name = h('input', { name: 'name', type: 'text', value: '' });
  const command = h('input', { name: 'command', type: 'text', value: 'python train.py', required: true });
  const form = h('form', { class: 'stack', id: 'job-form', 'aria-label': 'Submit a job' },
    ...field('Grant', grant),
    ...field('Chips', chips),
    ...field('Walltime (seconds)', walltime),
    ...field('Name', name),
    ...field('Command', command),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Submit job')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const answer = await act('Job submission', () => api('/v1/jobs', {
      method: 'POST',
      body: {
        program: session.program,
        grant: grant.value,
        chips: Number(chips.value),
        walltime_s: Number(walltime.value),
        name: name.value || undefined,
        argv: command.value.split(/\s+/).filter(Boolean),
      },
    }));
    if (answer) await rerender();
  });
  return form;
}

function obligationForm(obligation) {
  const reference = h('input', { type: 'text', required: true, placeholder: obligation.kind === 'repository' ? 'https://forge/…' : '10.1234/… or arXiv:…' });
  const license = h('input', { type: 'text', placeholder: 'Apache-2.0' });
  const form = h('form', { class: 'inline', 'aria-label': `Evidence for ${obligation.id}` },
    h('label', {}, `${obligation.kind === 'repository' ? 'Repository URL' : 'DOI or arXiv id'}`, reference),
    obligation.kind === 'repository' ? h('label', {}, 'License', license) : null,
    h('button', { type: 'submit' }, 'Submit evidence'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const body = { reference: reference.value.trim() };
    if (obligation.kind === 'repository' && license.value) body.license = license.value.trim();
    const answer = await act(`Evidence for ${obligation.id}`, () =>
      api(programPath(`/obligations/${obligation.id.split('/').map(encodeURIComponent).join('/')}/submit`), { method: 'POST', body }));
    if (answer) await rerender();
  });
  return form;
}

export async function render() {
  const refused = needsRole(['researcher', 'admin', 'officer']);
  if (refused) return refused;
  const [proposals, grants, jobsPage, obligations] = await Promise.all([
    apiAll(programPath('/proposals'), {}, 2000),
    apiAll(programPath('/grants'), {}, 2000),
    api('/v1/jobs', { query: { program: session.program, limit: 1000 } }),
    apiAll(programPath('/obligations'), {}, 2000),
  ]);
  const jobs = jobsPage.items;
  const balances = await Promise.all(grants.slice(0, 5).map((g) => api(programPath(`/grants/${encodeURIComponent(g.id)}/balance`))));
  const charts = await Promise.all(grants.slice(0, 5).map((g, i) => burnDown(g, jobs, balances[i])));
  const shown = jobs.slice(-JOBS_SHOWN).reverse();
  return [
    session.me.person ? h('p', { class: 'muted' }, `Person ${session.me.person}.`) : null,
    section('My proposals', table('Proposals', [
      ['Id', (p) => p.id],
      ['Call', (p) => p.call],
      ['Title', (p) => p.title],
      ['Requested', (p) => credits(p.requested), { num: true }],
      ['Status', (p) => p.status],
    ], proposals.slice(0, 500))),
    section('My grants', table('Grants', [
      ['Id', (g) => g.id],
      ['Track', (g) => g.track],
      ['Awarded', (g) => credits(g.awarded), { num: true }],
      ['Spent', (g) => credits(g.spent), { num: true }],
      ['Balance', (g) => credits(g.balance), { num: true }],
      ['Status', (g) => g.status],
      ['Ends', (g) => when(g.end_us)],
    ], grants), ...charts),
    section('Submit a job', grants.length ? jobForm(grants) : h('p', { class: 'muted' }, 'No grant to charge a job to yet.')),
    section('My jobs', cards([['Jobs', String(jobs.length) + (jobsPage.next ? '+' : '')],
      ['Running', String(jobs.filter((j) => j.state === 'running').length)],
      ['Pending', String(jobs.filter((j) => j.state === 'pending').length)]]),
    table(jobsPage.next ? `Jobs (the first ${jobs.length} by submission; the latest ${shown.length} of them, newest first)` : `Jobs (the latest ${shown.length}, newest first)`, [
      ['Id', (j) => j.id],
      ['Name', (j) => j.name],
      ['Grant', (j) => j.grant],
      ['Chips', (j) => j.chips, { num: true }],
      ['State', (j) => j.state],
      ['Pending reason', (j) => j.reason || ''],
      ['Cost (credits)', (j) => credits(j.charged), { num: true }],
      ['Nodes', (j) => j.nodes.slice(0, 4).join(' ')],
    ], shown, { empty: 'no jobs yet' })),
    section('My obligations', table('Obligations', [
      ['Id', (o) => o.id],
      ['Kind', (o) => o.kind],
      ['Due', (o) => when(o.due_us)],
      ['State', (o) => o.state],
      ['Reference', (o) => o.reference],
      ['Evidence', (o) => (o.state === 'due' || o.state === 'overdue' || o.state === 'rejected' ? obligationForm(o) : '')],
    ], obligations.slice(0, 200))),
  ];
}
