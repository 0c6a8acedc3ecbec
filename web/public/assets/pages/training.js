// Training: the program's catalog of courses and labs (public), my enrolments and the
// enrol form (researchers and students), the enrolments of my items with their progress
// and the completion button (instructors and staff), and a certificate lookup that anyone
// can use (docs/training.md).
import { act, api, apiAll, credits, field, h, programPath, rerender, section, session, table, when } from '../app.js';

const LEARNERS = ['researcher', 'student'];
const TEACHERS = ['instructor', 'admin', 'officer'];

function enrolForm(items, grants) {
  const item = h('select', { name: 'item', required: true }, items.map((i) => h('option', { value: i.id }, `${i.id}: ${i.title}`)));
  const grant = h('select', { name: 'grant', required: true }, grants.map((g) => h('option', { value: g.id }, g.id)));
  const form = h('form', { class: 'stack', id: 'enrol-form', 'aria-label': 'Enrol in a course or lab' },
    ...field('Course or lab', item),
    ...field('Through grant', grant),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Enrol')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const answer = await act(`Enrolment in ${item.value}`, () =>
      api(programPath(`/training/${encodeURIComponent(item.value)}/enrol`), { method: 'POST', body: { grant: grant.value } }));
    if (answer) await rerender();
  });
  return form;
}

function completeButton(enrolment) {
  if (enrolment.state !== 'enrolled') return enrolment.certificate || enrolment.state;
  return h('button', {
    type: 'button',
    onclick: async () => {
      const answer = await act(`Completion of ${enrolment.id}`, () =>
        api(programPath(`/enrolments/${encodeURIComponent(enrolment.id)}/complete`), { method: 'POST', body: {} }));
      if (answer) await rerender();
    },
  }, `Mark ${enrolment.id} completed`);
}

function certificateLookup() {
  const input = h('input', { type: 'text', name: 'certificate', required: true, placeholder: 'C-…', autocomplete: 'off' });
  const out = h('p', { class: 'muted', id: 'certificate-result', 'aria-live': 'polite' });
  const form = h('form', { class: 'stack', id: 'certificate-form', 'aria-label': 'Check a certificate' },
    ...field('Certificate id', input),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Check')), out);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const entry = await api(programPath(`/certificates/${encodeURIComponent(input.value.trim())}`));
      out.textContent = `${entry.certificate}: ${entry.data.title} (${entry.data.kind}, ${entry.data.level}), completed ${when(entry.data.completed_us)}; entry ${entry.seq} of the public log, hash ${entry.hash.slice(0, 16)}…`;
    } catch (error) {
      out.textContent = `Not found: ${error.message}`;
    }
  });
  return form;
}

export async function render() {
  const items = await apiAll(programPath('/training'), {}, 5000);
  const parts = [
    section('Catalog', table('Courses and labs', [
      ['Id', (i) => i.id],
      ['Kind', (i) => i.kind],
      ['Title', (i) => i.title],
      ['Level', (i) => i.level],
      ['Prerequisites', (i) => i.prerequisites.join(', ')],
      ['Credits', (i) => credits(i.credits), { num: true }],
      ['Template', (i) => (i.lab ? `${i.lab.chips} chips, ${i.lab.walltime_s} s` : '')],
      ['Enrolled', (i) => i.enrolled, { num: true }],
      ['Completed', (i) => i.completed, { num: true }],
    ], items, { empty: 'no course or lab yet' })),
  ];
  const role = session.me.role;
  if (role !== 'public') {
    const enrolments = await apiAll(programPath('/enrolments'), {}, 5000);
    const mine = enrolments.filter((e) => e.person === session.me.person);
    if (LEARNERS.includes(role)) {
      const grants = await apiAll(programPath('/grants'), {}, 1000);
      parts.push(section('My enrolments',
        table('My courses and labs', [
          ['Enrolment', (e) => e.id],
          ['Item', (e) => e.item],
          ['State', (e) => e.state],
          ['Credits left', (e) => credits(e.left ?? ''), { num: true }],
          ['Certificate', (e) => e.certificate],
        ], mine, { empty: 'not enrolled in anything' }),
        items.length && grants.length ? enrolForm(items, grants) : h('p', { class: 'muted' }, 'Enrolment needs a grant you belong to.')));
    }
    if (TEACHERS.includes(role)) {
      parts.push(section('Enrolments and progress', table('Enrolments of my courses and labs', [
        ['Enrolment', (e) => e.id],
        ['Item', (e) => e.item],
        ['Learner', (e) => e.person],
        ['Grant', (e) => e.grant],
        ['Spent', (e) => credits(e.spent), { num: true }],
        ['Left', (e) => credits(e.left ?? ''), { num: true }],
        ['Enrolled', (e) => when(e.enrolled_us)],
        ['Completion', (e) => completeButton(e)],
      ], enrolments, { empty: 'no enrolment yet' })));
    }
  }
  parts.push(section('Check a certificate', certificateLookup()));
  return parts;
}
