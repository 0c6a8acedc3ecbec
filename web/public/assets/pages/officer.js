// Program officer: call progress, the draft decision with its rationale, caps and floors,
// two what-ifs before commit, and the obligations waiting for review.
//
// What-ifs: (1) draft again under another award policy and compare with the previous
// draft (a draft is journaled but never binding: a later draft replaces it, and only
// commit creates grants); (2) the what-if route (GET .../calls/{call}/whatif), which
// solves the call with another budget, a changed fairness floor or another policy and
// is shown beside the current draft. It stores and journals nothing.
import { act, api, apiAll, cards, credits, field, h, needsRole, programPath, rerender, section, table } from '../app.js';

// The previous draft of each call, kept for this tab, to compare with the next one.
const previousDrafts = new Map();
// The last what-if of each call ({ asked, result }), kept for this tab.
const whatIfs = new Map();

// A decimal credits string as integer micro-credits (exact, for differences).
function micro(text) {
  const [whole, fraction = ''] = String(text ?? '0').split('.');
  const negative = whole.startsWith('-');
  const value = BigInt(whole.replace('-', '') || '0') * 1000000n + BigInt((fraction + '000000').slice(0, 6));
  return negative ? -value : value;
}

function microText(value) {
  const negative = value < 0n;
  const abs = negative ? -value : value;
  const fraction = (abs % 1000000n).toString().padStart(6, '0').replace(/0+$/, '');
  return `${negative ? '-' : ''}${abs / 1000000n}${fraction ? `.${fraction}` : ''}`;
}

const fundedCount = (decision) => (decision?.outcomes || []).filter((o) => micro(o.awarded) > 0n).length;

// The what-if form and, once asked, its draft beside the current one.
function whatIfPanel(program, call, decision) {
  const id = call.id;
  const last = whatIfs.get(id);
  const floors = (program.fairness_floors || []).filter((f) => !f.tracks.length || f.tracks.includes(call.track));
  const budget = h('input', {
    id: `whatif-budget-${id}`, name: 'budget', inputmode: 'decimal', autocomplete: 'off',
    placeholder: program.tracks.find((t) => t.id === call.track)?.available ?? '',
    value: last?.asked.budget ?? '',
  });
  const floor = h('select', { id: `whatif-floor-${id}`, name: 'floor' },
    h('option', { value: '' }, floors.length ? '(unchanged)' : '(no floor applies)'),
    floors.map((f) => h('option', { value: f.name }, `${f.name} (${f.share_bp / 100}%)`)));
  floor.value = last?.asked.floorName ?? '';
  const share = h('input', {
    id: `whatif-share-${id}`, name: 'share', type: 'number', min: '0', max: '100', step: '0.01',
    value: last?.asked.share ?? '',
  });
  const policy = h('select', { id: `whatif-policy-${id}`, name: 'policy' },
    h('option', { value: '' }, `program default (${program.award_policy})`),
    h('option', { value: 'mip' }, 'mip (optimal)'), h('option', { value: 'greedy' }, 'greedy (rank order)'));
  policy.value = last?.asked.policy ?? '';
  const form = h('form', { class: 'inline', id: `whatif-form-${id}`, 'aria-label': `What-if for ${id}` },
    ...field('Budget (credits)', budget), ' ',
    ...field('Fairness floor', floor), ' ',
    ...field('Floor share (%)', share), ' ',
    ...field('Policy', policy), ' ',
    h('button', { type: 'submit', id: `whatif-${id}`, class: 'secondary' }, 'Show what-if'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const asked = { budget: budget.value.trim(), floorName: floor.value, share: share.value.trim(), policy: policy.value };
    const query = { budget: asked.budget, policy: asked.policy };
    if (asked.floorName) query.floor = `${asked.floorName}:${asked.share || '0'}`;
    const result = await act(`What-if of ${id}`, () =>
      api(programPath(`/calls/${encodeURIComponent(id)}/whatif`), { query }));
    if (result) {
      whatIfs.set(id, { asked, result });
      await rerender();
    }
  });
  const parts = [h('h4', {}, `What-if for ${id}: change the budget or a floor, see the new draft`), form];
  if (last) {
    const w = last.result;
    const currentTotal = decision ? credits(decision.total_awarded) : 'no draft yet';
    parts.push(h('div', { id: `whatif-result-${id}`, role: 'status' },
      cards([
        ['What-if budget', credits(w.budget)],
        ['What-if policy', `${w.policy}${w.optimal ? ' (optimal)' : ` (gap ${w.gap})`}`],
        ['Total awarded: current', h('span', { id: `whatif-current-total-${id}` }, currentTotal)],
        ['Total awarded: what-if', h('span', { id: `whatif-total-${id}` }, credits(w.total_awarded))],
        ['Funded: current → what-if', h('span', { id: `whatif-funded-${id}` }, `${decision ? fundedCount(decision) : 0} → ${w.funded}`)],
      ]),
      table('What-if floors', [
        ['Floor', (f) => f.name],
        ['Required %', (f) => f.share_bp_required / 100, { num: true }],
        ['Enforced %', (f) => f.share_bp_enforced / 100, { num: true }],
        ['Achieved %', (f) => f.share_bp_achieved / 100, { num: true }],
        ['Met', (f) => h('span', { class: f.met ? 'ok' : 'bad' }, f.met ? 'met' : 'not met')],
      ], w.floors, { empty: 'no fairness floor applies' }),
      (() => {
        const currentBy = new Map((decision?.outcomes || []).map((o) => [o.proposal, o]));
        return table('What-if against the current draft', [
          ['Proposal', (o) => o.proposal],
          ['Requested', (o) => credits(o.requested), { num: true }],
          ['Current', (o) => (currentBy.has(o.proposal) ? credits(currentBy.get(o.proposal).awarded) : ''), { num: true }],
          ['What-if', (o) => credits(o.awarded), { num: true }],
          ['Difference', (o) => {
            const diff = micro(o.awarded) - micro(currentBy.get(o.proposal)?.awarded ?? '0');
            return diff === 0n ? '' : `${diff > 0n ? '+' : ''}${credits(microText(diff))}`;
          }, { num: true }],
          ['Rationale', (o) => o.rationale],
        ], w.outcomes.slice(0, 1000));
      })()));
  }
  return h('div', { class: 'whatif' }, parts);
}

async function decisionOf(call) {
  try {
    return await api(programPath(`/calls/${encodeURIComponent(call)}/decision`));
  } catch (error) {
    if (error.status === 404) return null;
    throw error;
  }
}

function callActions(call) {
  const path = (action) => programPath(`/calls/${encodeURIComponent(call.id)}/${action}`);
  const button = (label, action, enabled) =>
    h('button', {
      type: 'button',
      class: 'secondary',
      disabled: !enabled,
      onclick: async () => {
        if (await act(`${label} ${call.id}`, () => api(path(action), { method: 'POST', body: {} }))) await rerender();
      },
    }, `${label}`);
  return h('span', {},
    button('Open', 'open', call.state === 'scheduled'), ' ',
    button('Close', 'close', call.state === 'open'), ' ',
    button('Assign reviewers', 'assign', call.state === 'closed'));
}

function decisionPanel(program, call, decision, floors) {
  const policy = h('select', { id: `policy-${call.id}`, name: 'policy' },
    h('option', { value: 'mip' }, 'mip (optimal)'), h('option', { value: 'greedy' }, 'greedy (rank order)'));
  if (decision) policy.value = decision.policy === 'greedy' ? 'greedy' : 'mip';
  const draftButton = h('button', {
    type: 'submit',
    id: `draft-${call.id}`,
  }, decision ? 'Draft again (what-if)' : 'Draft decision');
  const form = h('form', { class: 'inline', 'aria-label': `Draft the decision of ${call.id}` },
    h('label', {}, 'Award policy', policy), draftButton);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (decision) previousDrafts.set(call.id, decision);
    const done = await act(`Draft of ${call.id}`, () =>
      api(programPath(`/calls/${encodeURIComponent(call.id)}/decision/draft`), { method: 'POST', body: { policy: policy.value } }));
    if (done) await rerender();
  });
  const commitButton = h('button', {
    type: 'button',
    id: `commit-${call.id}`,
    disabled: !decision || decision.committed,
    onclick: async () => {
      if (await act(`Commit of ${call.id}`, () =>
        api(programPath(`/calls/${encodeURIComponent(call.id)}/decision/commit`), { method: 'POST', body: {} }))) {
        await rerender();
      }
    },
  }, 'Commit decision');
  const parts = [h('h3', {}, `Call ${call.id} (${call.track}): ${call.state}`)];
  if (call.state !== 'closed' && !decision) {
    parts.push(h('p', { class: 'muted' }, 'A decision is drafted once the call is closed and reviewed.'));
    return h('div', {}, parts);
  }
  if (!decision?.committed) parts.push(form);
  if (decision) {
    const before = previousDrafts.get(call.id);
    const track = program.tracks.find((t) => t.id === call.track);
    parts.push(cards([
      ['State', decision.committed ? 'committed' : 'draft'],
      ['Policy', decision.policy],
      ['Optimal', decision.optimal ? 'yes' : `gap ${decision.gap}`],
      ['Total awarded', credits(decision.total_awarded)],
      ['Track budget', credits(track?.budget)],
      ['Award cap', credits(track?.award_cap)],
      ['Institution cap', credits(track?.institution_cap)],
    ]));
    if (before && !decision.committed) {
      parts.push(h('p', { role: 'status', class: 'warn' },
        `What-if: ${before.policy} awarded ${credits(before.total_awarded)}; ${decision.policy} awards ${credits(decision.total_awarded)} `
        + `(${before.outcomes.filter((o) => Number(o.awarded) > 0).length} → ${decision.outcomes.filter((o) => Number(o.awarded) > 0).length} funded).`));
    }
    const beforeBy = new Map((before?.outcomes || []).map((o) => [o.proposal, o]));
    parts.push(table('Floors', [
      ['Floor', (f) => f.floor],
      ['Required %', (f) => f.required_percent, { num: true }],
      ['Achieved %', (f) => f.achieved_percent, { num: true }],
      ['Met', (f) => h('span', { class: f.met ? 'ok' : 'bad' }, f.met ? 'met' : 'not met')],
    ], floors, { empty: 'no fairness floor applies' }));
    parts.push(table('Outcomes and rationale', [
      ['Rank', (o) => o.rank, { num: true }],
      ['Proposal', (o) => o.proposal],
      ['Merit', (o) => Number(o.merit).toFixed(2), { num: true }],
      ['Requested', (o) => credits(o.requested), { num: true }],
      ['Awarded', (o) => credits(o.awarded), { num: true }],
      ['Before', (o) => (beforeBy.has(o.proposal) ? credits(beforeBy.get(o.proposal).awarded) : ''), { num: true }],
      ['Rationale', (o) => o.rationale],
      ['Explanation', (o) => o.explanation],
    ], decision.outcomes.slice(0, 1000)));
    if (!decision.committed) parts.push(h('p', {}, commitButton));
  }
  if (call.state === 'closed') parts.push(whatIfPanel(program, call, decision));
  return h('div', {}, parts);
}

function obligationReview(obligation) {
  const send = (accept) => async () => {
    if (await act(`${accept ? 'Acceptance' : 'Rejection'} of ${obligation.id}`, () =>
      api(programPath(`/obligations/${obligation.id.split('/').map(encodeURIComponent).join('/')}/review`), { method: 'POST', body: { accept } }))) {
      await rerender();
    }
  };
  return h('span', {},
    h('button', { type: 'button', onclick: send(true), 'aria-label': `Accept ${obligation.id}` }, 'Accept'), ' ',
    h('button', { type: 'button', class: 'secondary', onclick: send(false), 'aria-label': `Reject ${obligation.id}` }, 'Reject'));
}

export async function render() {
  const refused = needsRole(['officer', 'admin']);
  if (refused) return refused;
  const [program, report, proposals, reviews, submitted] = await Promise.all([
    api(programPath()),
    api(programPath('/report')),
    apiAll(programPath('/proposals'), {}, 20000),
    apiAll(programPath('/reviews'), {}, 50000),
    apiAll(programPath('/obligations'), { state: 'submitted' }, 2000),
  ]);
  const decisions = await Promise.all(program.calls.map((c) => decisionOf(c.id)));
  const progress = program.calls.map((call) => {
    const mine = proposals.filter((p) => p.call === call.id);
    const ids = new Set(mine.map((p) => p.id));
    const done = reviews.filter((r) => ids.has(r.proposal));
    return { call, proposals: mine.length, withdrawn: mine.filter((p) => p.status === 'withdrawn').length, reviews: done.length, reviewed: new Set(done.map((r) => r.proposal)).size };
  });
  return [
    section('Call progress', table('Calls', [
      ['Call', (r) => r.call.id],
      ['Track', (r) => r.call.track],
      ['State', (r) => r.call.state],
      ['Proposals', (r) => r.proposals, { num: true }],
      ['Withdrawn', (r) => r.withdrawn, { num: true }],
      ['Reviews done', (r) => r.reviews, { num: true }],
      ['Proposals reviewed', (r) => r.reviewed, { num: true }],
      ['Actions', (r) => callActions(r.call)],
    ], progress)),
    section('Decisions',
      h('p', { class: 'muted' }, 'What-if: drafting never creates grants; draft again with another policy to compare before you commit, or use the what-if form to see the draft a closed call would get with another budget, fairness floor or policy (nothing is stored).'),
      ...program.calls.map((call, i) => decisionPanel(program, call, decisions[i], report.fairness_floors.filter((f) => f.call === call.id)))),
    section('Obligations to review', table('Submitted evidence', [
      ['Obligation', (o) => o.id],
      ['Kind', (o) => o.kind],
      ['Reference', (o) => o.reference],
      ['License', (o) => o.license],
      ['Review', (o) => obligationReview(o)],
    ], submitted, { empty: 'nothing waiting' })),
  ];
}
