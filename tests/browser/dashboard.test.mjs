// The dashboard in a real browser (Debian's chromium, headless, driven by playwright-core)
// against a real `atrium serve` seeded through the API: every page loads and shows the
// numbers the API returns, the main actions work from the page, the public page verifies
// the decision log and reports an altered entry, axe-core finds no serious or critical
// violation on any page, and no page breaks its Content-Security-Policy. Governance: the
// sponsor vetoes a funded proposal before the commit (the public page and the API keep it
// sealed until then), the vetoed applicant appeals and the officer upholds it from the
// reserve; the public page then shows the override with its text, the budget it moved,
// the proposal it displaced, the appeal by ground and the sponsor-tied proposals against
// the others, as the report says; a program without rules says it allows no overrides. Playwright gives
// chromium a fresh temporary profile (--user-data-dir) per launch. Screenshots go to
// --out. Exits non-zero on the first failure.
//
//   node tests/browser/dashboard.test.mjs --atrium build/dev/src/cli/atrium \
//        --out build/dev/browser-screenshots [--chromium /usr/bin/chromium]
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

import { CALL, PEOPLE, PROGRAM, QUIET_PROGRAM, programToml, seedCycle, startServer } from './seed.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const sourceDir = path.resolve(here, '../..');
const webDir = path.join(sourceDir, 'web');
const require = createRequire(path.join(webDir, 'package.json'));
const { chromium } = require('playwright-core');
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

function option(name, fallback) {
  const index = process.argv.indexOf(name);
  return index > 0 ? process.argv[index + 1] : fallback;
}
const atrium = option('--atrium', path.join(sourceDir, 'build/dev/src/cli/atrium'));
const out = path.resolve(option('--out', path.join(sourceDir, 'build/dev/browser-screenshots')));
const executablePath = option('--chromium', '/usr/bin/chromium');
mkdirSync(out, { recursive: true });

const started = Date.now();
const step = (text) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${text}`);

function formatCredits(text) {
  const [whole, fraction = ''] = String(text).split('.');
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return fraction ? `${grouped}.${fraction.slice(0, 2).padEnd(2, '0')}` : grouped;
}

async function checkStaticHeaders(url) {
  const plain = await fetch(`${url}/`, { headers: { 'Accept-Encoding': 'identity' } });
  assert.equal(plain.status, 200);
  const csp = plain.headers.get('content-security-policy');
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  assert.equal(plain.headers.get('x-content-type-options'), 'nosniff');
  const etag = plain.headers.get('etag');
  assert.ok(etag);
  const again = await fetch(`${url}/`, { headers: { 'If-None-Match': etag, 'Accept-Encoding': 'identity' } });
  assert.equal(again.status, 304);
  // gzip where accepted: the raw bytes must gunzip to the same file.
  const raw = await import('node:http').then(({ get }) => new Promise((resolve, reject) => {
    get(`${url}/assets/app.js`, { headers: { 'Accept-Encoding': 'gzip' } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
    }).on('error', reject);
  }));
  assert.equal(raw.headers['content-encoding'], 'gzip');
  const expected = readFileSync(path.join(webDir, 'public/assets/app.js'));
  assert.ok(gunzipSync(raw.body).equals(expected), 'gzip body is the file');
  const traversal = await fetch(`${url}/assets/..%2f..%2fCMakeLists.txt`);
  assert.ok([400, 404].includes(traversal.status), `traversal answered ${traversal.status}`);
  const dotfile = await fetch(`${url}/assets/.hidden`);
  assert.equal(dotfile.status, 404);
}

const OVERRIDE_TEXT = 'The PI is not eligible under rule 4.2 of the call';
const APPEAL_REASON = 'Rule 4.2 did not apply to this call.';
const gov = {};

// The public page's governance section against the report (which only shows committed
// decisions) and the API's override and appeal lists.
async function checkGovernance(page, report, call, programPath) {
  const g = report.governance;
  const texts = (selector) => page.$$eval(selector, (tds) => tds.map((td) => td.textContent));
  const rowsOf = (caption) => page.$$eval('section[aria-labelledby="s-governance"] table', (tables, c) => {
    const t = tables.find((x) => x.querySelector('caption')?.textContent === c);
    return t ? [...t.querySelectorAll('tbody tr')].map((tr) => [...tr.children].map((td) => td.textContent)) : null;
  }, caption);
  assert.match(await page.textContent('#gov-override-rules'), /at most 1 per call, moving at most 60% of its budget/);
  assert.equal(await page.$('#gov-no-overrides'), null);
  const block = `section[aria-labelledby="s-governance"] .gov-call[data-call="${CALL}"]`;
  const made = g.overrides.calls.find((c) => c.call === CALL);
  assert.ok(made, 'the report shows the committed call\'s overrides');
  const cardsShown = await page.$$eval(`${block} .card`, (cs) => Object.fromEntries(cs.map((c) => [c.querySelector('.label').textContent, c.querySelector('.value').textContent])));
  assert.equal(cardsShown.Vetoes, '1');
  assert.equal(cardsShown.Additions, '0');
  assert.equal(cardsShown['Budget moved'], formatCredits(made.budget_moved));
  assert.ok(Number(made.budget_moved) > 0);
  const listed = await call(null, 'GET', `${programPath}/calls/${CALL}/decision/overrides`);
  assert.equal(listed.committed, true);
  assert.equal(listed.items.length, 1);
  assert.deepEqual(await rowsOf(`Overrides in ${CALL}`),
    [[gov.override, gov.vetoed, 'veto', 'eligibility', OVERRIDE_TEXT, formatCredits(listed.items[0].moved)]]);
  assert.deepEqual(await rowsOf(`Overrides in ${CALL} by kind and reason`), [['veto', 'eligibility', '1']]);
  const displaced = listed.items[0].displaced;
  assert.equal(displaced.length, 1);
  assert.equal(displaced[0].proposal, gov.displaced);
  assert.deepEqual(await rowsOf(`Proposals displaced by overrides in ${CALL}`),
    [[gov.displaced, '0', formatCredits(displaced[0].after), gov.override]]);
  assert.deepEqual(await rowsOf(`Appeals in ${CALL} by ground`), [['procedural_error', '1', '1', '0', '0']]);
  const appeal = (await call(null, 'GET', `${programPath}/calls/${CALL}/appeals`)).items;
  assert.equal(appeal.length, 1);
  assert.deepEqual(await rowsOf(`Appeals in ${CALL}`),
    [[`A-${gov.vetoed}`, gov.vetoed, 'procedural_error', 'upheld', APPEAL_REASON, formatCredits(appeal[0].funded)]]);
  assert.match(await page.textContent('#gov-appeal-rules'), new RegExp(`funded ${formatCredits(g.appeals.reserve.funded)}`));
  // The track's committed credits name what the reserve paid (its pool did not).
  const trackRow = await page.$$eval('section[aria-labelledby="s-budget"] table tbody tr td', (tds) => tds.map((td) => td.textContent));
  assert.equal(trackRow[4], formatCredits(appeal[0].funded), 'the track shows the grant paid from the appeals reserve');
  assert.equal(report.tracks[0].from_appeals_reserve, appeal[0].funded);
  const sides = g.sponsor_ties.calls.find((c) => c.call === CALL);
  assert.equal(sides.tied.decided, 1, 'D1 (northfield) is tied to the sponsor');
  assert.deepEqual(await rowsOf(`Proposals tied to the sponsor in ${CALL}`), [
    ['tied to the sponsor', String(sides.tied.decided), String(sides.tied.awarded), `${(sides.tied.award_rate * 100).toFixed(1)}%`, sides.tied.mean_score.toFixed(2)],
    ['others', String(sides.others.decided), String(sides.others.awarded), `${(sides.others.award_rate * 100).toFixed(1)}%`, sides.others.mean_score.toFixed(2)],
  ]);
  // The per-proposal rationale from the log names the override's effects.
  const rationale = await texts('section[aria-labelledby="s-decisions"] table:nth-of-type(2) tbody tr td:nth-child(5)');
  assert.ok(rationale.includes('vetoed_by_override') && rationale.includes('displaced_by_override'), rationale.join(', '));
}

async function main() {
  const server = await startServer({ atrium, webRoot: path.join(webDir, 'public') });
  let browser;
  const failures = [];
  try {
    step(`atrium serve at ${server.url}`);
    await checkStaticHeaders(server.url);
    step('static headers: CSP, nosniff, ETag 304, gzip, no traversal');
    const seed = await seedCycle(server, sourceDir);
    const { tokens, call, programPath } = seed;
    step(`seeded program ${PROGRAM}; review left for the page: ${seed.left}`);

    browser = await chromium.launch({
      executablePath,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });

    // A fresh context per role, signed in through the page's own form.
    async function open(page_name, token) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
      const page = await context.newPage();
      const cspErrors = [];
      page.on('console', (message) => {
        if (/Content Security Policy|Refused to/.test(message.text())) cspErrors.push(message.text());
      });
      page.on('pageerror', (error) => cspErrors.push(`page error: ${error.message}`));
      await page.goto(`${server.url}/#/${page_name}`);
      await page.waitForSelector(`main[data-ready="${page_name}"]`);
      if (token) {
        await page.fill('#token-input', token);
        await page.click('#signin button[type=submit]');
        await page.waitForSelector('#whoami:not([hidden])');
        await page.waitForFunction((name) => {
          const main = document.querySelector('main');
          return main.dataset.ready === name && main.dataset.role !== 'public' && !main.hasAttribute('aria-busy');
        }, page_name);
      }
      assert.ok(!page.url().includes(token || '\u0000'), 'the token never appears in the URL');
      return { context, page, cspErrors };
    }
    async function rendered(page, name) {
      await page.waitForFunction((n) => document.querySelector('main').dataset.ready === n && !document.querySelector('main').hasAttribute('aria-busy'), name);
    }
    async function axe(page, name) {
      await page.evaluate(axeSource);
      const result = await page.evaluate(async () => {
        // eslint-disable-next-line no-undef
        const r = await axe.run(document, { resultTypes: ['violations'] });
        return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help }));
      });
      const serious = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
      if (serious.length) failures.push(`${name}: axe ${JSON.stringify(serious)}`);
      step(`${name}: axe ${serious.length} serious/critical, ${result.length - serious.length} minor`);
    }
    async function shoot(page, name) {
      await page.screenshot({ path: path.join(out, `${name}.png`), fullPage: true });
    }
    async function waitNotice(page, pattern) {
      await page.waitForFunction((p) => new RegExp(p).test(document.getElementById('notice').textContent), pattern.source);
      const text = await page.textContent('#notice');
      assert.doesNotMatch(text, /failed/, text);
    }
    const done = async ({ context, cspErrors }, name) => {
      if (cspErrors.length) failures.push(`${name}: ${cspErrors.join('; ')}`);
      await context.close();
    };

    // ---- reviewer: assigned proposals, never the conflicted one; submit a review -----
    {
      const session = await open('reviewer', tokens.reviewerA);
      const { page } = session;
      const assigned = (await call(tokens.reviewerA, 'GET', `${programPath}/proposals`)).items.map((p) => p.id).sort();
      const shown = (await page.$$eval('section[aria-labelledby="s-assigned-proposals"] tbody tr td:first-child', (tds) => tds.map((td) => td.textContent))).sort();
      assert.deepEqual(shown, assigned, 'the page lists exactly the assigned proposals');
      await axe(page, 'reviewer');
      await shoot(page, 'reviewer');
      await page.selectOption('#review-form select[name=proposal]', seed.left);
      await page.fill('#review-form input[name=merit]', '4');
      await page.fill('#review-form input[name=openness]', '5');
      await page.fill('#review-form textarea', 'Reviewed from the browser.');
      await page.click('#review-form button[type=submit]');
      await waitNotice(page, /Review of .*: done/);
      const reviews = (await call(tokens.reviewerA, 'GET', `${programPath}/reviews`)).items;
      const mine = reviews.find((r) => r.proposal === seed.left && r.comment === 'Reviewed from the browser.');
      assert.ok(mine, 'the review reached the API');
      assert.deepEqual(mine.scores, [4, 5]);
      await done(session, 'reviewer');
      step(`reviewer: ${assigned.length} assigned shown, review of ${seed.left} submitted`);

      const conflicted = await open('reviewer', tokens.conflicted);
      const listed = await conflicted.page.$$eval('section[aria-labelledby="s-assigned-proposals"] tbody tr td:first-child', (tds) => tds.map((td) => td.textContent));
      assert.ok(!listed.includes('D1'), 'a conflicted proposal is never shown');
      await done(conflicted, 'reviewer-conflicted');
    }

    // ---- officer: progress, draft, what-if, commit ---------------------------------
    {
      const session = await open('officer', tokens.officer);
      const { page } = session;
      const row = await page.$$eval('section[aria-labelledby="s-call-progress"] tbody tr td', (tds) => tds.map((td) => td.textContent));
      assert.equal(row[0], CALL);
      assert.equal(row[3], '3', 'three proposals');
      const reviewCount = (await call(tokens.officer, 'GET', `${programPath}/reviews`)).items.length;
      assert.equal(row[5], String(reviewCount), 'reviews done as the API counts them');
      await page.click(`#draft-${CALL}`);
      await waitNotice(page, /Draft of .*: done/);
      await rendered(page, 'officer');
      await page.selectOption(`#policy-${CALL}`, 'greedy');
      await page.click(`#draft-${CALL}`);
      // The first draft's notice may still be showing: wait for the comparison itself.
      await page.waitForFunction(
        () => /What-if: \S+ awarded/.test(
          document.querySelector('section[aria-labelledby="s-decisions"]')?.textContent ?? ''),
        null, { timeout: 20000 });
      await rendered(page, 'officer');
      const whatIf = await page.textContent('section[aria-labelledby="s-decisions"]');
      assert.match(whatIf, /What-if: \S+ awarded/);
      const draft = await call(tokens.officer, 'GET', `${programPath}/calls/${CALL}/decision`);
      assert.equal(draft.committed, false);
      assert.match(whatIf, new RegExp(formatCredits(draft.total_awarded).replace(/[.]/g, '\\.')));

      // What-if with a smaller budget: the page shows what the API's whatif answers,
      // beside the current draft, and neither the draft nor the log changes.
      const logBefore = (await call(tokens.officer, 'GET', programPath)).log_entries;
      const smaller = String(Math.floor(Number(draft.total_awarded) / 2));
      await page.fill(`#whatif-budget-${CALL}`, smaller);
      await page.click(`#whatif-${CALL}`);
      await page.waitForSelector(`#whatif-total-${CALL}`, { timeout: 20000 });
      await rendered(page, 'officer');
      const expected = await call(tokens.officer, 'GET', `${programPath}/calls/${CALL}/whatif?budget=${smaller}`);
      assert.equal(expected.what_if, true);
      assert.equal(expected.budget, smaller);
      assert.ok(Number(expected.total_awarded) <= Number(smaller), 'the what-if stays within its budget');
      assert.ok(Number(expected.total_awarded) < Number(draft.total_awarded), 'a smaller budget awards less');
      assert.equal(await page.textContent(`#whatif-total-${CALL}`), formatCredits(expected.total_awarded));
      assert.equal(await page.textContent(`#whatif-current-total-${CALL}`), formatCredits(draft.total_awarded));
      const fundedNow = draft.outcomes.filter((o) => Number(o.awarded) > 0).length;
      assert.equal(await page.textContent(`#whatif-funded-${CALL}`), `${fundedNow} → ${expected.funded}`);
      const rows = await page.$$eval(`#whatif-result-${CALL} table:last-of-type tbody tr`, (trs) => trs.length);
      assert.equal(rows, expected.outcomes.length, 'one row per proposal in the what-if');
      const unaffected = await call(tokens.officer, 'GET', `${programPath}/calls/${CALL}/decision`);
      assert.deepEqual(unaffected, draft, 'the what-if changed nothing in the draft');
      assert.equal((await call(tokens.officer, 'GET', programPath)).log_entries, logBefore, 'a what-if is never journaled');
      // A bad budget is refused with its code and field, shown on the page.
      const refused = await fetch(`${server.url}${programPath}/calls/${CALL}/whatif?budget=-5`, { headers: { Authorization: `Bearer ${tokens.officer}` } });
      assert.equal(refused.status, 422);
      const refusal = (await refused.json()).error;
      assert.equal(refusal.code, 'invalid_argument');
      assert.equal(refusal.field, 'budget');
      step(`officer: what-if with budget ${smaller} awards ${expected.total_awarded} (draft ${draft.total_awarded})`);
      await axe(page, 'officer');
      await shoot(page, 'officer');

      // The sponsor vetoes the smallest funded proposal of the draft: the declined one is
      // re-solved into the award. Sealed until the commit: the public gets 403 from the
      // override list and the public page shows neither the override nor its text.
      const funded = draft.outcomes.filter((o) => Number(o.awarded) > 0).sort((a, b) => Number(a.awarded) - Number(b.awarded));
      const declined = draft.outcomes.filter((o) => Number(o.awarded) === 0);
      assert.equal(funded.length, 2, 'the track funds two of the three proposals');
      assert.equal(declined.length, 1);
      gov.vetoed = funded[0].proposal;
      gov.displaced = declined[0].proposal;
      const made = await call(tokens.sponsor, 'POST', `${programPath}/calls/${CALL}/decision/overrides`,
        { proposal: gov.vetoed, kind: 'veto', reason: 'eligibility', text: OVERRIDE_TEXT });
      gov.override = made.override;
      assert.equal(gov.override, `${CALL}:override-1`);
      const redrawn = await call(tokens.officer, 'GET', `${programPath}/calls/${CALL}/decision`);
      const outcome = (id) => redrawn.outcomes.find((o) => o.proposal === id);
      assert.equal(outcome(gov.vetoed).rationale, 'vetoed_by_override');
      assert.equal(outcome(gov.vetoed).awarded, '0');
      assert.equal(outcome(gov.displaced).rationale, 'displaced_by_override');
      assert.deepEqual(outcome(gov.displaced).overrides, [gov.override]);
      assert.ok(Number(outcome(gov.displaced).awarded) > 0, 'the veto displaced the declined proposal into the award');
      const sealed = await fetch(`${server.url}${programPath}/calls/${CALL}/decision/overrides`);
      assert.equal(sealed.status, 403, 'a draft\'s overrides are sealed from the public');
      const seen = await call(tokens.sponsor, 'GET', `${programPath}/calls/${CALL}/decision/overrides`);
      assert.equal(seen.committed, false);
      assert.equal(seen.items[0].text, OVERRIDE_TEXT);
      const early = await open('public', null);
      assert.doesNotMatch(await early.page.textContent('main'), new RegExp(OVERRIDE_TEXT), 'no override text before the commit');
      assert.match(await early.page.textContent('section[aria-labelledby="s-governance"]'), /No committed decision yet/);
      await done(early, 'public-before-commit');
      step(`sponsor: vetoed ${gov.vetoed}, ${gov.displaced} displaced into the award; sealed until the commit`);
      await page.reload();
      await rendered(page, 'officer');
      await page.click(`#commit-${CALL}`);
      await waitNotice(page, /Commit of .*: done/);
      const committed = await call(tokens.officer, 'GET', `${programPath}/calls/${CALL}/decision`);
      assert.equal(committed.committed, true, 'the decision was committed from the page');
      await done(session, 'officer');
      step(`officer: drafted (mip, then greedy what-if) and committed ${committed.total_awarded}`);
    }
    // ---- appeal: the vetoed applicant appeals, the officer upholds it from the reserve --
    {
      const piKey = { D1: 'pi1', D2: 'pi2', D3: 'pi3' }[gov.vetoed];
      const filed = await call(tokens[piKey], 'POST', `${programPath}/proposals/${gov.vetoed}/appeal`, { ground: 'procedural_error', text: 'The eligibility rule was applied after the deadline.' });
      assert.equal(filed.appeal, `A-${gov.vetoed}`);
      assert.equal(filed.reviewers, 1);
      const decided = await call(tokens.officer, 'POST', `${programPath}/appeals/${filed.appeal}/decide`, { outcome: 'upheld', reason: APPEAL_REASON });
      assert.equal(decided.state, 'upheld');
      assert.equal(decided.grant, `G-${gov.vetoed}`);
      const shown = await call(null, 'GET', `${programPath}/appeals/${filed.appeal}`);
      assert.equal(shown.state, 'upheld');
      assert.ok(!('text' in shown) && !('reviewers' in shown), 'the public sees what the log publishes, not the applicant\'s text or the reviewers');
      step(`appeal ${filed.appeal} upheld, funded ${shown.funded} from the reserve`);
    }
    const grants = (await call(tokens.officer, 'GET', `${programPath}/grants`)).items;
    assert.ok(grants.length > 0, 'the decision created grants');
    const grant = grants[0];
    const piKey = Object.keys(PEOPLE).find((k) => PEOPLE[k] === grant.pi);

    // ---- researcher: grants and burn-down, submit a job, see it ----------------------
    let jobId;
    {
      const session = await open('researcher', tokens[piKey]);
      const { page } = session;
      const grantRow = await page.$$eval('section[aria-labelledby="s-my-grants"] tbody tr td', (tds) => tds.map((td) => td.textContent));
      assert.equal(grantRow[0], grant.id);
      assert.equal(grantRow[2], formatCredits(grant.awarded), 'awarded as the API says');
      assert.ok(await page.$('section[aria-labelledby="s-my-grants"] figure .uplot'), 'a burn-down chart');
      await page.selectOption('#job-form select[name=grant]', grant.id);
      await page.fill('#job-form input[name=chips]', '16');
      await page.fill('#job-form input[name=walltime]', '7200');
      await page.fill('#job-form input[name=name]', 'browser-job');
      await page.fill('#job-form input[name=command]', 'python train.py --epochs 3');
      await page.click('#job-form button[type=submit]');
      await waitNotice(page, /Job submission: done/);
      await rendered(page, 'researcher');
      const jobs = (await call(tokens[piKey], 'GET', '/v1/jobs')).items;
      const job = jobs.find((j) => j.name === 'browser-job');
      assert.ok(job, 'the job reached the API');
      jobId = job.id;
      const rows = await page.$$eval('section[aria-labelledby="s-my-jobs"] tbody tr', (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
      const shown = rows.find((r) => r[0] === job.id);
      assert.ok(shown, 'the job is in the list');
      assert.equal(shown[4], job.state);
      assert.deepEqual(job.argv, ['python', 'train.py', '--epochs', '3']);
      await axe(page, 'researcher');
      await shoot(page, 'researcher');
      await done(session, 'researcher');
      step(`researcher: ${grant.id} shown, job ${job.id} submitted (${job.state})`);
    }
    // The operator reports the run's end, so usage has chip-hours and credits.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const before = await call(tokens.operator, 'GET', `/v1/jobs/${jobId}`);
    if (before.state === 'running') await call(tokens.operator, 'POST', `/v1/jobs/${jobId}/finish`, {});

    // ---- operator: heatmap, queue, drain from the page -------------------------------
    {
      const session = await open('operator', tokens.operator);
      const { page } = session;
      const nodes = (await call(tokens.operator, 'GET', '/v1/cluster/nodes?limit=1000')).items;
      const cells = await page.$$eval('.heat-node[data-node]', (b) => b.length);
      assert.equal(cells, nodes.length, 'one heatmap cell per node');
      const target = nodes.find((n) => n.state === 'up' && n.pool === 'gpu');
      await page.click(`.heat-node[data-node="${target.name}"]`);
      assert.equal(await page.inputValue('#node-name'), target.name);
      await page.click('#drain-button');
      await waitNotice(page, /Drain .*: done/);
      await rendered(page, 'operator');
      const after = (await call(tokens.operator, 'GET', '/v1/cluster/nodes?state=draining')).items.map((n) => n.name);
      assert.ok(after.includes(target.name), 'the node is draining');
      const notUp = await page.$$eval('section[aria-labelledby="s-nodes-not-up"] tbody tr td:first-child', (tds) => tds.map((td) => td.textContent));
      assert.ok(notUp.includes(target.name), 'the page shows it');
      assert.match(await page.getAttribute(`.heat-node[data-node="${target.name}"]`, 'aria-label'), /draining/);
      await axe(page, 'operator');
      await shoot(page, 'operator');
      await done(session, 'operator');
      step(`operator: ${nodes.length} nodes in the heatmap, drained ${target.name}`);
    }

    // ---- usage: the API's numbers, CSV export ---------------------------------------
    {
      const session = await open('usage', tokens.operator);
      const { page } = session;
      await page.waitForSelector('#usage-results .cards');
      const values = await page.$$eval('#usage-form input, #usage-form select', (e) => Object.fromEntries(e.map((x) => [x.name, x.value])));
      const report = await call(tokens.operator, 'GET', `/v1/usage?from=${values.from}&to=${values.to}&step=${values.step}&group_by=${values.group_by}`);
      assert.ok(report.totals.jobs >= 1, 'the browser job is in the usage');
      const cardText = await page.$$eval('#usage-results .card', (cs) => Object.fromEntries(cs.map((c) => [c.querySelector('.label').textContent, c.querySelector('.value').textContent])));
      assert.equal(cardText['Jobs started'], String(report.totals.jobs));
      assert.equal(cardText.Credits, formatCredits(report.totals.credits));
      assert.equal(cardText['Chip-hours'], report.totals.chip_hours.toFixed(1));
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#usage-csv')]);
      const csv = readFileSync(await download.path(), 'utf8').trim().split('\n');
      assert.equal(csv[0], 'step_start_utc,group,chip_hours,credits,jobs,wait_mean_s,wait_p95_s,utilisation');
      assert.equal(csv.length, 1 + report.steps.length + report.groups.length);
      await axe(page, 'usage');
      await shoot(page, 'usage');
      await done(session, 'usage');
      step(`usage: ${report.totals.jobs} jobs, ${report.totals.chip_hours} chip-hours, CSV of ${csv.length} lines`);
    }

    // ---- training: enrol through the page, an instructor completes, the certificate -
    {
      const instructor = (await call(tokens.admin, 'POST', '/v1/tokens', { role: 'instructor', person: PEOPLE.reviewerB, label: 'browser instructor' })).token;
      await call(tokens.officer, 'POST', `${programPath}/training`, { id: 'intro', kind: 'course', title: 'Intro to the cluster', instructors: [PEOPLE.reviewerB] });
      let session = await open('training', tokens[piKey]);
      let { page } = session;
      const catalog = await page.$$eval('section[aria-labelledby="s-catalog"] tbody tr td', (tds) => tds.map((td) => td.textContent));
      assert.equal(catalog[0], 'intro');
      await page.selectOption('#enrol-form select[name=item]', 'intro');
      await page.selectOption('#enrol-form select[name=grant]', grant.id);
      await page.click('#enrol-form button[type=submit]');
      await waitNotice(page, /Enrolment in intro: done/);
      await rendered(page, 'training');
      const enrolments = (await call(tokens[piKey], 'GET', `${programPath}/enrolments`)).items;
      assert.equal(enrolments.length, 1);
      assert.equal(enrolments[0].state, 'enrolled');
      await axe(page, 'training (learner)');
      await done(session, 'training (learner)');

      session = await open('training', instructor);
      ({ page } = session);
      await page.click(`button:has-text("Mark ${enrolments[0].id} completed")`);
      await waitNotice(page, new RegExp(`Completion of ${enrolments[0].id}: done`));
      await rendered(page, 'training');
      const [completed] = (await call(instructor, 'GET', `${programPath}/enrolments`)).items;
      assert.equal(completed.state, 'completed');
      assert.match(completed.certificate, /^C-[0-9a-f]+$/);
      await page.fill('#certificate-form input[name=certificate]', completed.certificate);
      await page.click('#certificate-form button[type=submit]');
      await page.waitForFunction(() => /entry \d+ of the public log/.test(document.getElementById('certificate-result').textContent));
      await axe(page, 'training (instructor)');
      await shoot(page, 'training');
      await done(session, 'training (instructor)');
      step(`training: ${enrolments[0].id} enrolled from the page, completed by the instructor, certificate ${completed.certificate} found`);
    }

    // ---- reservations: book from the page, the public calendar, cancel ---------------
    {
      let session = await open('reservations', tokens[piKey]);
      let { page } = session;
      await page.selectOption('#book-form select[name=grant]', grant.id);
      await page.fill('#book-form input[name=nodes]', '2');
      await page.click('#book-form button[type=submit]');
      await waitNotice(page, /Booking: done/);
      await rendered(page, 'reservations');
      const mine = (await call(tokens[piKey], 'GET', '/v1/reservations')).items.filter((b) => b.grant === grant.id);
      assert.equal(mine.length, 1);
      assert.equal(mine[0].node_count, 2);
      assert.equal(mine[0].state, 'booked');
      await page.waitForSelector(`button:has-text("Cancel ${mine[0].reservation}")`);
      await axe(page, 'reservations (researcher)');
      await done(session, 'reservations (researcher)');

      session = await open('reservations', null);
      ({ page } = session);
      const rows = await page.$$eval('section[aria-labelledby="s-busy-calendar"] tbody tr', (trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
      assert.ok(rows.some((r) => r[2] === 'booking' && r[3] === '2'), 'the public calendar shows the window');
      assert.ok(!(await page.content()).includes(grant.id), 'the public sees no owner');
      await axe(page, 'reservations (public)');
      await shoot(page, 'reservations');
      await done(session, 'reservations (public)');

      session = await open('reservations', tokens[piKey]);
      ({ page } = session);
      await page.click(`button:has-text("Cancel ${mine[0].reservation}")`);
      await waitNotice(page, new RegExp(`Cancellation of ${mine[0].reservation}: done`));
      const after = await call(tokens[piKey], 'GET', `/v1/reservations/${mine[0].reservation}`);
      assert.equal(after.state, 'cancelled');
      await done(session, 'reservations (cancel)');
      step(`reservations: ${mine[0].reservation} booked from the page (2 nodes), shown anonymously to the public, cancelled`);
    }

    // ---- public: numbers, verification, and an altered entry -------------------------
    {
      const session = await open('public', null);
      const { page } = session;
      const report = await call(null, 'GET', `${programPath}/report`);
      const verdict = await page.getAttribute('#log-verdict', 'data-ok');
      assert.equal(verdict, 'true', await page.textContent('#log-verdict'));
      assert.match(await page.textContent('#log-verdict'), new RegExp(`all ${report.log.entries} log entries`));
      const budget = await page.$$eval('section[aria-labelledby="s-budget"] .card', (cs) => Object.fromEntries(cs.map((c) => [c.querySelector('.label').textContent, c.querySelector('.value').textContent])));
      assert.equal(budget.Committed, formatCredits(report.budget.committed));
      assert.equal(budget.Total, formatCredits(report.budget.total));
      const rationale = await page.$$eval('section[aria-labelledby="s-decisions"] table:nth-of-type(2) tbody tr', (trs) => trs.length);
      assert.equal(rationale, 3, 'a rationale row per proposal');
      await checkGovernance(page, report, call, programPath);
      await axe(page, 'public');
      await shoot(page, 'public');
      // Alter one byte of one entry in transit: the page must say the log is broken.
      await page.route((url) => url.pathname.endsWith('/log'), async (route) => {
        const response = await route.fetch();
        const text = await response.text();
        const altered = text.replace('"proposals":3', '"proposals":4');
        assert.notEqual(altered, text, 'the alteration applies');
        await route.fulfill({ response, body: altered });
      });
      await page.reload();
      await rendered(page, 'public');
      assert.equal(await page.getAttribute('#log-verdict', 'data-ok'), 'false');
      const failed = await page.textContent('#log-verdict');
      assert.match(failed, /Verification FAILED at entry \d+: entry \d+'s hash does not match/);
      await shoot(page, 'public-tampered');
      await done(session, 'public');
      step(`public: verified ${report.log.entries} entries; altered copy rejected (${failed.slice(0, 60)}…)`);
    }

    // ---- a program without governance rules says so -----------------------------------
    {
      const now = Math.floor(Date.now() / 1000);
      await call(tokens.officer, 'POST', '/v1/programs', { toml: programToml(now, now + 3600, { id: QUIET_PROGRAM, governance: false }) });
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      const page = await context.newPage();
      await page.goto(`${server.url}/#/public?program=${QUIET_PROGRAM}`);
      await rendered(page, 'public');
      assert.equal(await page.inputValue('#program-select'), QUIET_PROGRAM);
      assert.equal(await page.textContent('#gov-no-overrides'), 'This program allows no sponsor overrides.');
      assert.equal(await page.textContent('#gov-no-appeals'), 'This program takes no appeals.');
      assert.equal(await page.$('#gov-override-rules'), null);
      await context.close();
      step('public: a program without rules says it allows no overrides and takes no appeals');
    }

    // ---- every page signed out says what it needs ----------------------------------
    {
      const session = await open('usage', null);
      assert.match(await session.page.textContent('main'), /Sign in with a operator or officer or admin token/);
      await done(session, 'signed-out');
    }
  } finally {
    if (browser) await browser.close();
    await server.stop();
  }
  if (failures.length) {
    console.error(`FAILED:\n${failures.join('\n')}`);
    process.exit(1);
  }
  writeFileSync(path.join(out, 'README.txt'), `Screenshots of the dashboard from tests/browser/dashboard.test.mjs, ${new Date().toISOString()}.\n`);
  step(`all checks passed; screenshots in ${out}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
