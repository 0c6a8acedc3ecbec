// Reviewer: the proposals assigned to me (never one I am conflicted on), the review
// form, and conflict declaration.
import { act, api, apiAll, field, h, needsRole, programPath, rerender, section, session, table, when } from '../app.js';

function reviewForm(program, open) {
  const proposal = h('select', { name: 'proposal', required: true }, open.map((p) => h('option', { value: p.id }, `${p.id}: ${p.title}`)));
  const scores = program.rubric.map((criterion) =>
    h('input', { type: 'number', name: criterion.name, min: criterion.min, max: criterion.max, value: String(criterion.max), required: true }));
  const comment = h('textarea', { name: 'comment', rows: 3, required: true });
  const form = h('form', { class: 'stack', id: 'review-form', 'aria-label': 'Submit a review' },
    ...field('Proposal', proposal),
    ...program.rubric.flatMap((criterion, i) => field(`${criterion.name} (${criterion.min}–${criterion.max}, weight ${criterion.weight})`, scores[i])),
    ...field('Comment', comment),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Submit review')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const answer = await act(`Review of ${proposal.value}`, () => api(programPath('/reviews'), {
      method: 'POST',
      body: { proposal: proposal.value, scores: scores.map((s) => Number(s.value)), comment: comment.value },
    }));
    if (answer) await rerender();
  });
  return form;
}

function conflictForm(assigned) {
  const proposal = h('input', { type: 'text', name: 'proposal', required: true, list: 'assigned-ids', autocomplete: 'off' });
  const note = h('input', { type: 'text', name: 'note', required: true });
  const form = h('form', { class: 'stack', id: 'conflict-form', 'aria-label': 'Declare a conflict of interest' },
    ...field('Proposal id', proposal),
    h('datalist', { id: 'assigned-ids' }, assigned.map((p) => h('option', { value: p.id }))),
    ...field('Reason', note),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Declare conflict')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const answer = await act(`Conflict on ${proposal.value}`, () => api(programPath('/conflicts'), {
      method: 'POST',
      body: { proposal: proposal.value.trim(), note: note.value },
    }));
    if (answer) await rerender();
  });
  return form;
}

export async function render() {
  const refused = needsRole(['reviewer']);
  if (refused) return refused;
  const [program, proposals, reviews, conflicts] = await Promise.all([
    api(programPath()),
    apiAll(programPath('/proposals'), {}, 5000),
    apiAll(programPath('/reviews'), {}, 5000),
    apiAll(programPath('/conflicts'), {}, 5000),
  ]);
  const conflicted = new Set(conflicts.filter((c) => c.reviewer === session.me.person).map((c) => c.proposal));
  const assigned = proposals.filter((p) => !conflicted.has(p.id));
  const reviewed = new Map(reviews.filter((r) => r.reviewer === session.me.person).map((r) => [r.proposal, r]));
  const open = assigned.filter((p) => !reviewed.has(p.id));
  return [
    h('p', { class: 'muted' }, `Reviewer ${session.me.person}: ${assigned.length} assigned, ${reviewed.size} reviewed, ${open.length} to do.`),
    section('Assigned proposals', table('Assigned to me', [
      ['Id', (p) => p.id],
      ['Call', (p) => p.call],
      ['Title', (p) => p.title],
      ['Topics', (p) => p.topics.join(', ')],
      ['Abstract', (p) => p.abstract],
      ['My review', (p) => (reviewed.has(p.id) ? `submitted ${when(reviewed.get(p.id).submitted_us)}` : 'to do')],
    ], assigned.slice(0, 500), { empty: 'nothing assigned to you' })),
    section('Review', open.length ? reviewForm(program, open) : h('p', { class: 'muted' }, 'No review left to write.')),
    section('Conflicts of interest',
      table('My declared and detected conflicts', [
        ['Proposal', (c) => c.proposal],
        ['Reason', (c) => c.reason],
        ['Note', (c) => c.note],
      ], conflicts.filter((c) => c.reviewer === session.me.person)),
      conflictForm(assigned)),
  ];
}
