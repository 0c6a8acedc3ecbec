// Performance figures for docs/dashboard.md (not part of CI: seeding takes minutes).
// Seeds the browser test's cycle, then 5,000 proposals (a second program with an open
// call) and 10,000 jobs, and loads each page once in a fresh browser context: bytes
// transferred (navigation + every resource, as the browser's Resource Timing reports
// them, split into the dashboard's files and API answers) and the time from navigation
// start to the page rendered with its data. Prints JSON.
//
//   node tests/browser/perf.mjs --atrium build/release/src/cli/atrium [--jobs 10000] [--proposals 5000] [--gzip-only]
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { CALL, PEOPLE, seedCycle, startServer } from './seed.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const sourceDir = path.resolve(here, '../..');
const require = createRequire(path.join(sourceDir, 'web/package.json'));
const { chromium } = require('playwright-core');
const option = (name, fallback) => {
  const index = process.argv.indexOf(name);
  return index > 0 ? process.argv[index + 1] : fallback;
};
const atrium = option('--atrium', path.join(sourceDir, 'build/release/src/cli/atrium'));
const jobCount = Number(option('--jobs', '10000'));
const proposalCount = Number(option('--proposals', '5000'));
const log = (text) => console.error(`[perf] ${text}`);

async function pool(count, width, fn) {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < count) await fn(next++);
  }));
}

function bigProgram(now) {
  const iso = (unix) => new Date(unix * 1000).toISOString().replace(/\.\d+Z$/, 'Z');
  return `[program]
id = "perf-program"
name = "Performance program"
currency = "USD"
total_budget = 100000000000
award_policy = "greedy"
topics = ["ml-systems", "compilers"]
[program.prices]
trn1 = "1.34375"
[[program.rubric]]
name = "merit"
weight = 1
min = 1
max = 5
[program.obligations]
progress_report_months = []
final_report = false
paper = true
repository = false
final_grace_months = 3
freeze_when_overdue = false
[[track]]
id = "research"
name = "Research"
kind = "research"
budget = 100000000000
award_cap = 5000000
institution_cap = 100000000000
pi_roles = ["faculty"]
[[call]]
id = "big-call"
track = "research"
opens = "${iso(now - 3600)}"
closes = "${iso(now + 30 * 86400)}"
review_deadline = "${iso(now + 40 * 86400)}"
decision = "${iso(now + 50 * 86400)}"
reviewers_per_proposal = 2
`;
}

async function main() {
  const server = await startServer({ atrium, webRoot: path.join(sourceDir, 'web/public') });
  let browser;
  try {
    const seed = await seedCycle(server, sourceDir);
    const { tokens, call, programPath } = seed;
    await call(tokens.reviewerA, 'POST', `${programPath}/reviews`, { proposal: seed.left, scores: [4, 4], comment: 'ok' });
    await call(tokens.officer, 'POST', `${programPath}/calls/${CALL}/decision/draft`, {});
    await call(tokens.officer, 'POST', `${programPath}/calls/${CALL}/decision/commit`, {});
    const grant = (await call(tokens.officer, 'GET', `${programPath}/grants`)).items[0];
    const researcher = tokens[Object.keys(PEOPLE).find((key) => PEOPLE[key] === grant.pi)];
    log(`cycle seeded; ${jobCount} jobs on ${grant.id}`);
    let t = Date.now();
    await pool(jobCount, 8, (i) => call(researcher, 'POST', '/v1/jobs', {
      program: 'browser-test', grant: grant.id, chips: [1, 4, 8, 16, 32][i % 5], walltime_s: 600 + (i % 7) * 600, name: `perf-${i}`, argv: ['run', String(i)],
    }));
    log(`jobs in ${((Date.now() - t) / 1000).toFixed(1)} s`);
    t = Date.now();
    await call(tokens.officer, 'POST', '/v1/programs', { toml: bigProgram(Math.floor(Date.now() / 1000)) });
    const p = '/v1/programs/perf-program';
    for (let i = 0; i < 50; i++) await call(tokens.officer, 'POST', `${p}/institutions`, { id: `inst-${i}`, name: `Institution ${i}`, type: i % 3 ? 'r1' : 'r2', country: ['US', 'GB', 'IN', 'BR', 'KE'][i % 5] });
    // ORCID-style ids with their ISO 7064 check character.
    const pid = (i) => {
      const base = `00000003${String(i).padStart(7, '0')}`;
      let total = 0;
      for (const digit of base) total = (total + Number(digit)) * 2;
      const check = (12 - (total % 11)) % 11;
      const full = base + (check === 10 ? 'X' : String(check));
      return full.match(/.{4}/g).join('-');
    };
    await pool(proposalCount, 8, (i) => call(tokens.officer, 'POST', `${p}/people`, { id: pid(i), name: `Person ${i}`, institution: `inst-${i % 50}`, role: 'faculty', expertise: ['compilers'], reviewer: false }));
    await call(tokens.officer, 'POST', `${p}/calls/big-call/open`, {});
    await pool(proposalCount, 8, (i) => call(tokens.officer, 'POST', `${p}/proposals`, {
      id: `P${i}`, call: 'big-call', pi: pid(i), title: `Proposal ${i}`, abstract: 'Seeded for the performance figures.', topics: ['compilers'], requested: String(100000 + i), duration_months: 12, open_source_plan: 'MIT',
    }));
    log(`${proposalCount} proposals in ${((Date.now() - t) / 1000).toFixed(1)} s`);

    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const pages = [
      ['public', null, 'browser-test'], ['researcher', researcher, 'browser-test'], ['reviewer', tokens.reviewerA, 'browser-test'],
      ['officer', tokens.officer, 'perf-program'], ['operator', tokens.operator, 'browser-test'], ['usage', tokens.operator, 'browser-test'],
    ];
    const figures = {};
    for (const [name, token, program] of pages) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      // --gzip-only: what the pages cost when the transport does not pick brotli (see
      // docs/dashboard.md: cpp-httplib compresses with brotli at its slowest quality).
      if (process.argv.includes('--gzip-only')) await context.setExtraHTTPHeaders({ 'Accept-Encoding': 'gzip, deflate' });
      if (token) await context.addInitScript((value) => sessionStorage.setItem('atrium.token', value), token);
      const page = await context.newPage();
      await page.goto(`${server.url}/#/${name}?program=${program}`);
      await page.waitForFunction((n) => document.querySelector('main').dataset.ready === n && !document.querySelector('main').hasAttribute('aria-busy'), name, { timeout: 60000 });
      if (name === 'usage') await page.waitForSelector('#usage-results .cards');
      figures[name] = await page.evaluate(() => {
        const nav = performance.getEntriesByType('navigation')[0];
        const resources = performance.getEntriesByType('resource');
        const sum = (list, key) => list.reduce((total, e) => total + (e[key] || 0), 0);
        const assets = resources.filter((e) => new URL(e.name).pathname.startsWith('/assets/'));
        const api = resources.filter((e) => new URL(e.name).pathname.startsWith('/v1/'));
        return {
          rendered_ms: Number(document.querySelector('main').dataset.renderedMs),
          transferred_bytes: nav.transferSize + sum(resources, 'transferSize'),
          page_files_transferred_bytes: nav.transferSize + sum(assets, 'transferSize'),
          page_files_decoded_bytes: nav.decodedBodySize + sum(assets, 'decodedBodySize'),
          api_transferred_bytes: sum(api, 'transferSize'),
          api_requests: api.length,
        };
      });
      log(`${name}: ${JSON.stringify(figures[name])}`);
      await context.close();
    }
    // What one large API answer costs by encoding (cpp-httplib compresses JSON itself).
    const encodings = {};
    for (const encoding of ['identity', 'gzip', 'br']) {
      const t0 = performance.now();
      const response = await fetch(`${server.url}/v1/programs/perf-program/proposals?limit=1000`, {
        headers: { Authorization: `Bearer ${tokens.officer}`, 'Accept-Encoding': encoding },
      });
      const bytes = (await response.arrayBuffer()).byteLength;
      encodings[encoding] = { ms: Math.round(performance.now() - t0), content_encoding: response.headers.get('content-encoding') || 'identity', decoded_bytes: bytes };
    }
    console.log(JSON.stringify({ jobs: jobCount, proposals: proposalCount, pages: figures, proposals_page_by_encoding: encodings }, null, 2));
  } finally {
    if (browser) await browser.close();
    await server.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
