// Verifies the public decision log in the browser, independently of the server's own
// check: every entry's hash must be SHA-256 over the previous entry's hash, a newline,
// and the entry's canonical JSON without its hash, i.e. the object
// {"at_us","data","prev","seq","type"} with keys in byte order, no spaces, strings
// escaped as JSON does and numbers exactly as the server wrote them
// (src/program/decision_log.cc). The first entry's previous hash is 64 zeros, and the
// last hash must be the head the program reports.
//
// The check does not know any entry type: it hashes whatever `data` holds. Numbers are
// kept as the text the server sent (a JSON parser that keeps number lexemes), so 2.0
// stays "2.0" and large integers keep every digit.

const GENESIS = '0'.repeat(64);

// ---- a JSON parser that keeps numbers as their text ----------------------------------

class RawNumber {
  constructor(text) {
    this.text = text;
  }
}

function parseRaw(text) {
  let at = 0;
  const fail = (what) => {
    throw new SyntaxError(`${what} at ${at}`);
  };
  const space = () => {
    while (at < text.length && ' \t\n\r'.includes(text[at])) at++;
  };
  const value = () => {
    space();
    const c = text[at];
    if (c === '{') {
      at++;
      const object = new Map();
      space();
      if (text[at] === '}') {
        at++;
        return object;
      }
      for (;;) {
        space();
        if (text[at] !== '"') fail('expected a key');
        const key = string();
        space();
        if (text[at++] !== ':') fail('expected :');
        object.set(key, value());
        space();
        if (text[at] === ',') {
          at++;
          continue;
        }
        if (text[at++] !== '}') fail('expected }');
        return object;
      }
    }
    if (c === '[') {
      at++;
      const array = [];
      space();
      if (text[at] === ']') {
        at++;
        return array;
      }
      for (;;) {
        array.push(value());
        space();
        if (text[at] === ',') {
          at++;
          continue;
        }
        if (text[at++] !== ']') fail('expected ]');
        return array;
      }
    }
    if (c === '"') return string();
    const literal = /^(?:true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(text.slice(at, at + 400));
    if (!literal) fail('unexpected character');
    at += literal[0].length;
    if (literal[0] === 'true') return true;
    if (literal[0] === 'false') return false;
    if (literal[0] === 'null') return null;
    return new RawNumber(literal[0]);
  };
  const string = () => {
    const match = /^"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/.exec(text.slice(at));
    if (!match) fail('bad string');
    at += match[0].length;
    return JSON.parse(match[0]);
  };
  const result = value();
  space();
  if (at !== text.length) fail('trailing characters');
  return result;
}

// ---- canonical form (nlohmann::json's dump()) ----------------------------------------

const encoder = new TextEncoder();

function compareUtf8(a, b) {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

function canonical(value) {
  if (value === null) return 'null';
  if (value === true) return 'true';
  if (value === false) return 'false';
  if (value instanceof RawNumber) return value.text;
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value instanceof Map) {
    const keys = [...value.keys()].sort(compareUtf8);
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonical(value.get(key))}`).join(',')}}`;
  }
  throw new TypeError('not a JSON value');
}

async function sha256Hex(text) {
  const digest = await crypto.subtle.digest('SHA-256', encoder.encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

// Verifies the entries of one or more raw log pages (the API's answer texts), in order.
// Returns {ok, entries, head, firstBroken, reason}.
export async function verifyLogPages(pages, expectedHead) {
  let prev = GENESIS;
  let count = 0;
  for (const pageText of pages) {
    let page;
    try {
      page = parseRaw(pageText);
    } catch (error) {
      return { ok: false, entries: count, head: prev, firstBroken: count + 1, reason: `the log is not valid JSON (${error.message})` };
    }
    const items = page instanceof Map ? page.get('items') : null;
    if (!Array.isArray(items)) return { ok: false, entries: count, head: prev, firstBroken: count + 1, reason: 'no items in the log answer' };
    for (const entry of items) {
      const seq = count + 1;
      const broken = (reason) => ({ ok: false, entries: count, head: prev, firstBroken: seq, reason });
      if (!(entry instanceof Map)) return broken('an entry is not an object');
      for (const key of ['seq', 'at_us', 'type', 'data', 'prev', 'hash']) {
        if (!entry.has(key)) return broken(`entry ${seq} has no ${key}`);
      }
      const seqValue = entry.get('seq');
      if (!(seqValue instanceof RawNumber) || seqValue.text !== String(seq)) return broken(`entry ${seq} is out of sequence`);
      if (entry.get('prev') !== prev) return broken(`entry ${seq} does not link to the previous entry's hash`);
      const body = new Map([
        ['seq', entry.get('seq')],
        ['at_us', entry.get('at_us')],
        ['type', entry.get('type')],
        ['data', entry.get('data')],
        ['prev', entry.get('prev')],
      ]);
      const hash = await sha256Hex(`${prev}\n${canonical(body)}`);
      if (hash !== entry.get('hash')) return broken(`entry ${seq}'s hash does not match its content`);
      prev = hash;
      count = seq;
    }
  }
  if (expectedHead !== undefined && expectedHead !== prev) {
    return { ok: false, entries: count, head: prev, firstBroken: count, reason: 'the last hash is not the head the program publishes' };
  }
  return { ok: true, entries: count, head: prev, firstBroken: 0, reason: '' };
}
