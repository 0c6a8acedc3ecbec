// Program officer: call progress, the draft decision with its rationale, caps and floors,
// a what-if (draft again under another award policy and compare, before commit), and the
// obligations waiting for review.
//
// What the API does not offer yet: a what-if that changes a track's budget or a fairness
// floor. A draft is journaled but never binding (a later draft replaces it, and only
// commit creates grants), so "draft with another policy" is the what-if available here.
import { act, api, apiAll, cards, credits, h, needsRole, programPath, rerender, section, table } from '../app.js';

// The previous draft of each call, kept for this tab, to compare with the next one.
const previousDrafts = new Map();

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
      h('p', { class: 'muted' }, 'What-if: drafting never creates grants; draft again with another policy to compare before you commit. Changing a budget or a floor for a what-if is not offered by the API yet.'),
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
