// Public: the program's transparency report and its decision log, verified here.
import { api, apiAll, bar, cards, credits, h, programPath, section, session, table, when } from '../app.js';
import { verifyLogPages } from '../verify.js';

const LOG_PAGES_MAX = 200; // 200,000 entries

async function fetchLogPages() {
  const pages = [];
  let after = '';
  for (let i = 0; i < LOG_PAGES_MAX; i++) {
    const text = await api(programPath('/log'), { query: { limit: 1000, after }, raw: true });
    pages.push(text);
    const next = JSON.parse(text).next;
    if (!next) break;
    after = next;
  }
  return pages;
}

function buckets(title, rows) {
  const max = Math.max(1, ...rows.map((r) => Number(r.credits)));
  return table(title, [
    ['Group', (r) => r.key],
    ['Credits', (r) => credits(r.credits), { num: true }],
    ['Grants', (r) => r.grants, { num: true }],
    ['Share', (r) => bar(Number(r.credits) / max, `${r.key}: ${credits(r.credits)} credits`)],
  ], rows);
}

const percent = (rate) => `${(Number(rate) * 100).toFixed(1)}%`;

// Governance in the open (docs/governance.md), per call: the sponsor's overrides with their
// public texts, the budget they moved and the proposals they displaced; appeals by ground
// and outcome; how proposals tied to the sponsor fared. Only committed decisions are shown:
// a draft's overrides are sealed until the commit, as in the log.
async function governanceSection(report) {
  const gov = report.governance;
  const committed = report.decisions.filter((d) => d.committed).map((d) => d.call);
  const appealsByCall = new Map();
  if (gov.appeals.allowed) {
    const lists = await Promise.all(committed.map((call) => apiAll(programPath(`/calls/${encodeURIComponent(call)}/appeals`))));
    committed.forEach((call, i) => appealsByCall.set(call, lists[i]));
  }
  const rules = [];
  if (!gov.overrides.allowed) {
    rules.push(h('p', { id: 'gov-no-overrides' }, gov.overrides.statement));
  } else {
    rules.push(h('p', { id: 'gov-override-rules' },
      `Sponsor overrides: at most ${gov.overrides.max_per_call} per call, moving at most ${gov.overrides.max_budget_percent}% of its budget; reasons published: ${gov.overrides.reasons.join(', ')}.`));
  }
  if (!gov.appeals.allowed) {
    rules.push(h('p', { id: 'gov-no-appeals' }, gov.appeals.statement));
  } else {
    rules.push(h('p', { id: 'gov-appeal-rules' },
      `Appeals: within ${gov.appeals.window_days} days of a decision, on ${gov.appeals.grounds_published.join(', ')}; reserve ${credits(gov.appeals.reserve.total)} credits, funded ${credits(gov.appeals.reserve.funded)}, left ${credits(gov.appeals.reserve.left)}.`));
  }
  const ties = gov.sponsor_ties;
  rules.push(ties.declared.length
    ? table('Declared ties of the sponsor', [
      ['Institution', (t) => t.institution || '-'],
      ['Person', (t) => t.person || '-'],
      ['Kind', (t) => t.kind],
    ], ties.declared)
    : h('p', { id: 'gov-no-ties' }, 'The sponsor declares no ties.'));

  const perCall = committed.map((call) => {
    const parts = [h('h3', {}, `Call ${call}`)];
    if (gov.overrides.allowed) {
      const made = gov.overrides.calls.find((c) => c.call === call);
      if (!made) {
        parts.push(h('p', { class: 'gov-overrides-none' }, 'No sponsor override in this call.'));
      } else {
        parts.push(cards([
          ['Vetoes', String(made.vetoes)],
          ['Additions', String(made.additions)],
          ['Budget moved', credits(made.budget_moved)],
          ['Proposals displaced', String(made.displaced.length)],
        ]));
        parts.push(table(`Overrides in ${call}`, [
          ['Override', (o) => o.override],
          ['Proposal', (o) => o.proposal],
          ['Kind', (o) => o.kind],
          ['Reason', (o) => o.reason],
          ['Public text', (o) => o.text],
          ['Moved', (o) => credits(o.moved), { num: true }],
        ], made.items));
        parts.push(table(`Overrides in ${call} by kind and reason`, [
          ['Kind', (r) => r.kind],
          ['Reason', (r) => r.reason],
          ['Count', (r) => r.count, { num: true }],
        ], made.by_reason));
        parts.push(table(`Proposals displaced by overrides in ${call}`, [
          ['Proposal', (d) => d.proposal],
          ['Optimiser alone', (d) => credits(d.before), { num: true }],
          ['After overrides', (d) => credits(d.after), { num: true }],
          ['Displaced by', (d) => d.overrides.join(', ')],
        ], made.displaced, { empty: 'none' }));
      }
    }
    if (gov.appeals.allowed) {
      const counts = gov.appeals.calls.find((c) => c.call === call);
      parts.push(table(`Appeals in ${call} by ground`, [
        ['Ground', (g) => g.ground],
        ['Filed', (g) => g.filed, { num: true }],
        ['Upheld', (g) => g.upheld, { num: true }],
        ['Rejected', (g) => g.rejected, { num: true }],
        ['Pending', (g) => g.pending, { num: true }],
      ], counts ? counts.by_ground : [], { empty: 'no appeal filed' }));
      parts.push(table(`Appeals in ${call}`, [
        ['Appeal', (a) => a.id],
        ['Proposal', (a) => a.proposal],
        ['Ground', (a) => a.ground],
        ['Outcome', (a) => a.state],
        ['Officer\'s reason', (a) => a.reason],
        ['Funded from the reserve', (a) => (a.funded ? credits(a.funded) : '-'), { num: true }],
      ], appealsByCall.get(call) || [], { empty: 'none' }));
    }
    if (ties.declared.length) {
      const sides = ties.calls.find((c) => c.call === call);
      if (sides) {
        parts.push(table(`Proposals tied to the sponsor in ${call}`, [
          ['Proposals', (r) => r.label],
          ['Decided', (r) => r.decided, { num: true }],
          ['Awarded', (r) => r.awarded, { num: true }],
          ['Award rate', (r) => percent(r.award_rate), { num: true }],
          ['Mean score', (r) => r.mean_score.toFixed(2), { num: true }],
        ], [{ label: 'tied to the sponsor', ...sides.tied }, { label: 'others', ...sides.others }]));
      }
    }
    return h('div', { class: 'gov-call', 'data-call': call }, parts);
  });
  return section('Governance', ...rules,
    committed.length ? perCall : h('p', { class: 'muted' }, 'No committed decision yet: overrides are published with the decision.'));
}

// Datasets as allocatable resources (docs/datasets.md): the catalog with its access
// policies, how many grants may use each dataset now, how many grants and jobs read it,
// and the storage charged to grants in all.
function datasetsSection(report) {
  const datasets = report.datasets ?? { items: [], storage_charged: '0' };
  const gib = (bytes) => (Number(bytes) / 2 ** 30).toFixed(Number(bytes) < 2 ** 30 ? 3 : 1);
  return section('Datasets',
    cards([
      ['Datasets', String(datasets.items.length)],
      ['Storage charged', credits(datasets.storage_charged)],
    ]),
    table('Catalog', [
      ['Dataset', (d) => d.dataset],
      ['Name', (d) => d.name],
      ['Access', (d) => d.policy],
      ['Licence', (d) => d.license],
      ['Size (GiB)', (d) => gib(d.size_bytes), { num: true }],
      ['Grants with access', (d) => d.grants_with_access, { num: true }],
      ['Grants that used it', (d) => d.grants_used, { num: true }],
      ['Jobs', (d) => d.jobs, { num: true }],
    ], datasets.items, { empty: 'no dataset in the catalog yet' }));
}

export async function render() {
  if (!session.program) return h('p', {}, 'No program yet.');
  const [report, pages] = await Promise.all([api(programPath('/report')), fetchLogPages()]);
  const verdict = await verifyLogPages(pages, report.log.head);
  const entries = pages.flatMap((text) => JSON.parse(text).items);
  const decided = entries.filter((e) => e.type === 'proposal_decided');

  const governance = await governanceSection(report);
  const budget = report.budget;
  const verifyBox = h(
    'div',
    { class: verdict.ok ? 'verify ok' : 'verify bad', role: 'status', id: 'log-verdict', 'data-ok': String(verdict.ok) },
    verdict.ok
      ? [h('p', { class: 'ok' }, `Verified in this browser: all ${verdict.entries} log entries chain correctly (SHA-256, WebCrypto).`),
         h('p', {}, 'Head hash: ', h('span', { class: 'mono' }, verdict.head))]
      : [h('p', { class: 'bad' }, `Verification FAILED at entry ${verdict.firstBroken}: ${verdict.reason}.`),
         h('p', {}, `${verdict.entries} entries verified before it. Do not trust this log copy.`)],
  );

  return [
    h('p', { class: 'muted' }, `${report.program.name} (${report.program.id}), ${report.program.currency}. Everything here is public and needs no token.`),
    section('Budget', cards([
      ['Total', credits(budget.total)],
      ['Committed', credits(budget.committed)],
      ['Released', credits(budget.released)],
      ['Spent', credits(budget.spent)],
      ['Returned', credits(budget.returned)],
    ]), table('Tracks', [
      ['Track', (t) => t.track],
      ['Kind', (t) => t.kind],
      ['Budget', (t) => credits(t.budget), { num: true }],
      ['Committed', (t) => credits(t.committed), { num: true }],
      ['Of which from the appeals reserve', (t) => credits(t.from_appeals_reserve ?? '0'), { num: true }],
      ['Grants', (t) => t.grants, { num: true }],
      ['Proposals', (t) => t.proposals, { num: true }],
    ], report.tracks)),
    section('Awards',
      h('div', { class: 'grid2' },
        h('div', {}, buckets('By institution type', report.awards_by_institution_type)),
        h('div', {}, buckets('By country', report.awards_by_country)),
        h('div', {}, buckets('By topic', report.awards_by_topic)),
      )),
    section('Fairness',
      cards([['Gini across institutions', String(report.gini_institutions)], ['Institutions applied', String(report.institutions_applied)]]),
      table('Fairness floors', [
        ['Call', (f) => f.call],
        ['Floor', (f) => f.floor],
        ['Required %', (f) => f.required_percent, { num: true }],
        ['Achieved %', (f) => f.achieved_percent, { num: true }],
        ['Met', (f) => h('span', { class: f.met ? 'ok' : 'bad' }, f.met ? 'met' : 'not met')],
      ], report.fairness_floors)),
    section('Decisions',
      table('Decisions', [
        ['Call', (d) => d.call],
        ['Committed', (d) => (d.committed ? 'yes' : 'draft')],
        ['Policy', (d) => d.policy],
        ['Optimal', (d) => (d.optimal ? 'yes' : `gap ${d.gap}`)],
        ['Awarded', (d) => credits(d.total_awarded), { num: true }],
        ['Funded', (d) => `${d.funded} of ${d.candidates}`, { num: true }],
      ], report.decisions),
      table('Per-proposal rationale (from the verified log)', [
        ['Proposal', (e) => e.data.proposal],
        ['Rank', (e) => e.data.rank, { num: true }],
        ['Requested', (e) => credits(e.data.requested), { num: true }],
        ['Awarded', (e) => credits(e.data.awarded), { num: true }],
        ['Rationale', (e) => e.data.rationale],
        ['Explanation', (e) => e.data.explanation],
        ['Institution', (e) => e.data.institution],
      ], decided.slice(-500), { empty: 'no committed decision yet' })),
    governance,
    section('Obligations', cards([
      ['Total', String(report.obligations.total)],
      ['Accepted (met)', String(report.obligations.accepted)],
      ['Submitted', String(report.obligations.submitted)],
      ['Due', String(report.obligations.due)],
      ['Overdue', String(report.obligations.overdue)],
      ['Grants frozen', String(report.obligations.grants_frozen)],
    ])),
    datasetsSection(report),
    section('Decision log', verifyBox,
      table(`Latest entries (of ${entries.length})`, [
        ['#', (e) => e.seq, { num: true }],
        ['When', (e) => when(e.at_us)],
        ['Type', (e) => e.type],
        ['Data', (e) => h('span', { class: 'mono' }, JSON.stringify(e.data).slice(0, 160))],
        ['Hash', (e) => h('span', { class: 'mono' }, e.hash.slice(0, 16))],
        ['Chain', (e) => (verdict.ok || e.seq < verdict.firstBroken
          ? h('span', { class: 'ok' }, 'verified')
          : h('span', { class: 'bad' }, e.seq === verdict.firstBroken ? 'BROKEN' : 'not verified'))],
      ], entries.slice(-25).reverse())),
  ];
}
