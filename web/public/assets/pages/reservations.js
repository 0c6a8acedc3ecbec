// Reservations: the cluster's busy calendar (public: live bookings and maintenance as
// anonymous windows), my grants' bookings in full with a cancel button, and the booking
// form for a grant's PI or member (docs/reservations.md).
import { act, api, apiAll, credits, field, h, programPath, rerender, section, session, table } from '../app.js';

const utc = (s) => (s === null || s === undefined ? '' : new Date(s * 1000).toISOString().replace('T', ' ').slice(0, 16) + ' UTC');

function bookForm(grants) {
  const grant = h('select', { name: 'grant', required: true }, grants.map((g) => h('option', { value: g.id }, g.id)));
  const nodes = h('input', { type: 'number', name: 'nodes', min: '1', value: '1', required: true });
  const hour = 3600;
  const next = Math.ceil(Date.now() / 1000 / hour) * hour + hour;
  const start = h('input', { type: 'datetime-local', name: 'start', required: true, value: new Date(next * 1000).toISOString().slice(0, 16) });
  const hours = h('input', { type: 'number', name: 'hours', min: '1', value: '4', required: true });
  const form = h('form', { class: 'stack', id: 'book-form', 'aria-label': 'Book capacity' },
    ...field('Grant that pays', grant),
    ...field('Whole nodes', nodes),
    ...field('Start (UTC)', start),
    ...field('Hours', hours),
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Book')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const start_s = Math.floor(Date.parse(`${start.value}:00Z`) / 1000);
    const end_s = start_s + Number(hours.value) * 3600;
    const answer = await act('Booking', () =>
      api(programPath(`/grants/${encodeURIComponent(grant.value)}/reservations`), {
        method: 'POST',
        body: { nodes: Number(nodes.value), start_s, end_s },
      }));
    if (answer) await rerender();
  });
  return form;
}

function cancelButton(booking) {
  if (!booking.reservation || !booking.grant || (booking.state !== 'booked' && booking.state !== 'active')) return booking.state;
  return h('button', {
    type: 'button',
    onclick: async () => {
      const path = `/v1/programs/${encodeURIComponent(booking.program)}/grants/${encodeURIComponent(booking.grant)}/reservations/${encodeURIComponent(booking.reservation)}/cancel`;
      const answer = await act(`Cancellation of ${booking.reservation}`, () => api(path, { method: 'POST', body: {} }));
      if (answer) await rerender();
    },
  }, `Cancel ${booking.reservation}`);
}

export async function render() {
  const bookings = await apiAll('/v1/reservations', {}, 5000);
  const live = bookings.filter((b) => b.state === 'booked' || b.state === 'active');
  const parts = [
    section('Busy calendar', table('Booked and maintenance windows', [
      ['Pool', (b) => b.pool],
      ['Accelerator', (b) => b.accelerator],
      ['Kind', (b) => b.kind],
      ['Nodes', (b) => b.node_count, { num: true }],
      ['Chips', (b) => b.chips, { num: true }],
      ['Start', (b) => utc(b.start_s)],
      ['End', (b) => utc(b.end_s)],
      ['State', (b) => b.state],
    ], live, { empty: 'nothing booked' })),
  ];
  const mine = bookings.filter((b) => b.reservation && b.grant);
  if (session.me.role !== 'public' && mine.length) {
    parts.push(section('My bookings', table('Bookings I may see in full', [
      ['Id', (b) => b.reservation],
      ['Grant', (b) => b.grant],
      ['Nodes', (b) => b.nodes.join(', ')],
      ['Start', (b) => utc(b.start_s)],
      ['End', (b) => utc(b.end_s)],
      ['Price', (b) => credits(b.price), { num: true }],
      ['Charged', (b) => credits(b.charged), { num: true }],
      ['Used chip-hours', (b) => b.used_chip_hours.toFixed(1), { num: true }],
      ['', (b) => cancelButton(b)],
    ], mine)));
  }
  if (['researcher', 'admin', 'officer'].includes(session.me.role) && session.program) {
    const grants = (await apiAll(programPath('/grants'), {}, 1000)).filter((g) => g.status === 'active');
    parts.push(section('Book capacity', grants.length ? bookForm(grants) : h('p', { class: 'muted' }, 'Booking needs an active grant you belong to.')));
  }
  return parts;
}
