// Public: the program's transparency report and its decision log, verified here.
import { api, bar, cards, credits, h, programPath, section, session, table, when } from '../app.js';
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

export async function render() {
  if (!session.program) return h('p', {}, 'No program yet.');
  const [report, pages] = await Promise.all([api(programPath('/report')), fetchLogPages()]);
  const verdict = await verifyLogPages(pages, report.log.head);
  const entries = pages.flatMap((text) => JSON.parse(text).items);
  const decided = entries.filter((e) => e.type === 'proposal_decided');

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
    section('Obligations', cards([
      ['Total', String(report.obligations.total)],
      ['Accepted (met)', String(report.obligations.accepted)],
      ['Submitted', String(report.obligations.submitted)],
      ['Due', String(report.obligations.due)],
      ['Overdue', String(report.obligations.overdue)],
      ['Grants frozen', String(report.obligations.grants_frozen)],
    ])),
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
