// Atrium dashboard: the shell (sign-in, program choice, routing) and the helpers every
// page uses. Pages are ES modules under pages/, loaded when first shown. Everything the
// pages show comes from the documented API on this origin (/v1/openapi.json); all text
// goes into the DOM as text nodes, never as HTML.
//
// The token lives in sessionStorage only: it is never put in a URL, a cookie or a log,
// and it is gone when the tab closes.

const TOKEN_KEY = 'atrium.token';
const PROGRAM_KEY = 'atrium.program';

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
  describe() {
    return `${this.code} (${this.status}): ${this.message}${this.field ? ` [${this.field}]` : ''}`;
  }
}

export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
  me: { role: 'public', person: '' },
  get program() {
    return sessionStorage.getItem(PROGRAM_KEY) || '';
  },
  set program(value) {
    sessionStorage.setItem(PROGRAM_KEY, value);
  },
};

function queryString(query) {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== '') params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

// Calls the API. `raw` returns the response text (the log verifier needs the bytes).
export async function api(path, { method = 'GET', body, query, raw = false } = {}) {
  const headers = { Accept: 'application/json' };
  if (session.token) headers.Authorization = `Bearer ${session.token}`;
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    headers['Idempotency-Key'] = crypto.randomUUID();
  }
  const response = await fetch(path + queryString(query), {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
    credentials: 'omit',
  });
  const text = await response.text();
  if (!response.ok) {
    let error = {};
    try {
      error = JSON.parse(text).error || {};
    } catch {
      error = { code: 'http_error', message: text.slice(0, 200) };
    }
    throw new ApiError(response.status, error.code || 'error', error.message || '', error.field || '');
  }
  if (raw) return text;
  return text ? JSON.parse(text) : null;
}

// Every page of a list (?limit=1000 and ?after=), up to `max` items.
export async function apiAll(path, query = {}, max = 20000) {
  const items = [];
  let after = '';
  for (;;) {
    const page = await api(path, { query: { ...query, limit: 1000, after } });
    items.push(...page.items);
    if (!page.next || items.length >= max) return items;
    after = page.next;
  }
}

export const programPath = (suffix = '') =>
  `/v1/programs/${encodeURIComponent(session.program)}${suffix}`;

// h('p', {class: 'x', onclick: f}, 'text', child): an element; strings become text nodes.
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      element.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      element.className = value;
    } else if (key === 'text') {
      element.textContent = value;
    } else if (key === 'value') {
      element.value = value;
    } else {
      element.setAttribute(key, value === true ? '' : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

// A table: columns are [header, (row) => cell, {num: true}]; cells may be nodes or text.
export function table(caption, columns, rows, { empty = 'None.' } = {}) {
  if (!rows.length) return h('p', { class: 'muted' }, `${caption}: ${empty}`);
  return h(
    'table',
    {},
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, columns.map(([head, , o]) => h('th', { scope: 'col', class: o?.num ? 'num' : undefined }, head)))),
    h(
      'tbody',
      {},
      rows.map((row) =>
        h('tr', {}, columns.map(([, cell, o]) => h('td', { class: o?.num ? 'num' : undefined }, cell(row) ?? ''))),
      ),
    ),
  );
}

export function cards(items) {
  return h(
    'ul',
    { class: 'cards' },
    items.map(([label, value]) => h('li', { class: 'card' }, h('span', { class: 'label' }, label), h('span', { class: 'value' }, value))),
  );
}

// A bar whose width is set through the CSSOM (allowed by the page's CSP, unlike style="").
export function bar(fraction, label) {
  const element = h('span', { class: 'bar', role: 'img', 'aria-label': label });
  element.style.width = `${Math.max(0, Math.min(1, fraction)) * 5}rem`;
  return element;
}

// Credits are decimal strings from the API; for display only they become numbers.
export function credits(text) {
  if (text === undefined || text === null) return '';
  const [whole, fraction = ''] = String(text).split('.');
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return fraction ? `${grouped}.${fraction.slice(0, 2).padEnd(2, '0')}` : grouped;
}

export function when(us) {
  if (!us && us !== 0) return '';
  return new Date(us / 1000).toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
}

export function notice(text, isError = false) {
  const element = document.getElementById('notice');
  element.textContent = text;
  element.className = isError ? 'notice error' : 'notice';
}

// Runs an action from a form or button, reporting the result in the live region.
export async function act(label, fn) {
  try {
    const result = await fn();
    notice(`${label}: done.`);
    return result;
  } catch (error) {
    notice(`${label} failed: ${error instanceof ApiError ? error.describe() : error.message}`, true);
    return undefined;
  }
}

export function field(label, control) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  return [h('label', { for: id }, label), control];
}

export function section(title, ...children) {
  return h('section', { 'aria-labelledby': slug(title) }, h('h2', { id: slug(title) }, title), ...children);
}

function slug(text) {
  return `s-${text.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
}

export function needsRole(roles) {
  if (roles.includes(session.me.role)) return null;
  return h(
    'p',
    { class: 'warn' },
    session.token
      ? `This page is for ${roles.join(' or ')} tokens; you are signed in as ${session.me.role}.`
      : `Sign in with a ${roles.join(' or ')} token to see this page.`,
  );
}

// ---- shell ---------------------------------------------------------------------------

const PAGES = {
  public: { title: 'Public', load: () => import('./pages/public.js') },
  researcher: { title: 'Researcher', load: () => import('./pages/researcher.js') },
  reviewer: { title: 'Reviewer', load: () => import('./pages/reviewer.js') },
  officer: { title: 'Program officer', load: () => import('./pages/officer.js') },
  operator: { title: 'Operator', load: () => import('./pages/operator.js') },
  usage: { title: 'Usage', load: () => import('./pages/usage.js') },
  training: { title: 'Training', load: () => import('./pages/training.js') },
  reservations: { title: 'Reservations', load: () => import('./pages/reservations.js') },
};

async function refreshIdentity() {
  const who = document.getElementById('whoami');
  const signin = document.getElementById('signin');
  const signout = document.getElementById('signout');
  session.me = { role: 'public', person: '' };
  if (session.token) {
    try {
      session.me = await api('/v1/me');
    } catch (error) {
      session.token = '';
      notice(`Sign-in failed: ${error instanceof ApiError ? error.describe() : error.message}`, true);
    }
  }
  const signedIn = session.me.role !== 'public';
  who.hidden = !signedIn;
  signout.hidden = !signedIn;
  signin.hidden = signedIn;
  who.textContent = signedIn ? `Signed in: ${session.me.role}${session.me.person ? ` ${session.me.person}` : ''}` : '';
}

async function loadPrograms() {
  const select = document.getElementById('program-select');
  const programs = await apiAll('/v1/programs');
  select.replaceChildren(...programs.map((p) => h('option', { value: p.id }, `${p.name} (${p.id})`)));
  const wanted = new URLSearchParams(location.hash.split('?')[1] || '').get('program');
  const choice = [wanted, session.program].find((id) => id && programs.some((p) => p.id === id)) || programs[0]?.id || '';
  session.program = choice;
  select.value = choice;
}

let rendering = 0;
async function route() {
  const name = (location.hash.replace(/^#\//, '').split('?')[0] || 'public').toLowerCase();
  const page = PAGES[name] || PAGES.public;
  const key = PAGES[name] ? name : 'public';
  for (const link of document.querySelectorAll('#nav a')) {
    if (link.getAttribute('href') === `#/${key}`) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  document.title = `${page.title} · Atrium`;
  const main = document.getElementById('main');
  const ticket = ++rendering;
  main.setAttribute('aria-busy', 'true');
  try {
    const module = await page.load();
    const content = await module.render();
    if (ticket !== rendering) return;
    main.replaceChildren(h('h1', {}, page.title), ...[content].flat(Infinity).filter(Boolean));
  } catch (error) {
    if (ticket !== rendering) return;
    main.replaceChildren(
      h('h1', {}, page.title),
      h('p', { class: 'error-text' }, `Could not load: ${error instanceof ApiError ? error.describe() : error.message}`),
    );
  } finally {
    if (ticket === rendering) {
      main.removeAttribute('aria-busy');
      main.dataset.ready = key;
      main.dataset.renderedMs = String(Math.round(performance.now()));
      main.dataset.role = session.me.role;
      window.dispatchEvent(new CustomEvent('atrium:rendered', { detail: key }));
    }
  }
}

export function rerender() {
  return route();
}

async function start() {
  document.getElementById('signin').addEventListener('submit', async (event) => {
    event.preventDefault();
    const input = document.getElementById('token-input');
    session.token = input.value.trim();
    input.value = '';
    await refreshIdentity();
    if (session.me.role !== 'public') notice(`Signed in as ${session.me.role}.`);
    await route();
  });
  document.getElementById('signout').addEventListener('click', async () => {
    session.token = '';
    await refreshIdentity();
    notice('Signed out.');
    await route();
  });
  document.getElementById('program-select').addEventListener('change', (event) => {
    session.program = event.target.value;
    route();
  });
  window.addEventListener('hashchange', () => {
    route();
    document.getElementById('main').focus();
  });
  await refreshIdentity();
  try {
    await loadPrograms();
  } catch (error) {
    notice(`Could not list programs: ${error.message}`, true);
  }
  await route();
}

start();
