// Starts a real `atrium serve` on 127.0.0.1 (any free port, a fresh data directory) and
// seeds a grant cycle through the HTTP API, as scripts/service-demo.sh does with the CLI:
// a cluster, a program whose call closes a few seconds after it is created, institutions,
// people, proposals, a declared conflict, reviewer assignment and all reviews but one
// (the browser test writes that one from the reviewer page).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const PROGRAM = 'browser-test';
export const CALL = 'open-call';
export const PEOPLE = {
  pi1: '0000-0002-0260-0005',
  pi2: '0000-0002-0260-0013',
  pi3: '0000-0002-0260-0048',
  reviewerA: '0000-0002-0260-0021',
  reviewerB: '0000-0002-0260-003X',
  conflicted: '0000-0002-0260-0056',
  sponsor: '0000-0002-0260-0064',
};

export async function startServer({ atrium, webRoot, log = false }) {
  const data = mkdtempSync(path.join(tmpdir(), 'atrium-browser-'));
  const args = ['serve', '--data', data, '--listen', '127.0.0.1:0', '--no-examples', '--rate-limit', '0'];
  if (webRoot) args.push('--web-root', webRoot);
  const child = spawn(atrium, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`atrium serve did not start:\n${output}`)), 30000);
    const onData = (chunk) => {
      output += chunk.toString();
      const match = /listening on (http:\/\/[^\s]+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (chunk) => {
      output += chunk.toString();
      if (log) process.stderr.write(chunk);
    });
    child.on('exit', (code) => reject(new Error(`atrium serve exited with ${code}:\n${output}`)));
  });
  const admin = readFileSync(path.join(data, 'admin.token'), 'utf8').trim();
  return {
    url,
    admin,
    output: () => output,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((resolve) => {
        if (child.exitCode !== null) resolve();
        else child.on('exit', resolve);
      });
      rmSync(data, { recursive: true, force: true });
    },
  };
}

export function client(url) {
  return async function call(token, method, route, body) {
    const headers = { Accept: 'application/json' };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const response = await fetch(url + route, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await response.text();
    const json = text ? JSON.parse(text) : null;
    if (!response.ok) throw new Error(`${method} ${route}: ${response.status} ${text}`);
    return json;
  };
}

const iso = (unix) => new Date(unix * 1000).toISOString().replace(/\.\d+Z$/, 'Z');

// Governance of the seeded program (docs/governance.md): one sponsor override per call on
// published reasons, appeals for 30 days funded from a reserve, and a declared tie of
// the sponsor to northfield (D1's institution). The track's 7,000,000 funds two of the
// three proposals, so a veto displaces the third into the award.
const GOVERNANCE = `[program.overrides]
max_per_call = 1
max_budget_percent = 60
reasons = ["eligibility", "export_control", "conflict_of_interest"]
[program.appeals]
window_days = 30
grounds = ["procedural_error", "conflict_not_detected", "factual_error"]
reviewers = 1
reserve = 3000000
[[program.sponsor_tie]]
institution = "northfield"
kind = "employment"
`;

// A program without governance rules: the public page must say it allows no overrides.
export const QUIET_PROGRAM = 'quiet-program';

export function programToml(now, closes, { id = PROGRAM, governance = true } = {}) {
  return `[program]
id = "${id}"
name = "Browser test program"
currency = "USD"
total_budget = 10000000
award_policy = "mip"
topics = ["ml-systems", "compilers", "responsible-ai"]
[program.prices]
trn1 = "1.34375"
[[program.rubric]]
name = "merit"
weight = 2
min = 1
max = 5
[[program.rubric]]
name = "openness"
weight = 1
min = 1
max = 5
[program.reservations]
max_chips = 512
max_hours = 72
max_ahead_days = 60
max_share_bp = 2500
cancel_fee_bp = 1000
[program.obligations]
progress_report_months = []
final_report = false
paper = true
repository = true
final_grace_months = 3
freeze_when_overdue = true
${governance ? GOVERNANCE : ''}[[track]]
id = "research"
name = "Research"
kind = "research"
budget = ${governance ? 7000000 : 10000000}
award_cap = 5000000
institution_cap = 6000000
pi_roles = ["faculty"]
[[call]]
id = "${CALL}"
track = "research"
opens = "${iso(now - 3600)}"
closes = "${iso(closes)}"
review_deadline = "${iso(now + 3600)}"
decision = "${iso(now + 7200)}"
reviewers_per_proposal = 2
`;
}

// Returns the tokens by role and person, and what the reviewer page must still do.
export async function seedCycle(server, sourceDir, { closeDelayS = 4 } = {}) {
  const call = client(server.url);
  const admin = server.admin;
  const token = async (role, person) => (await call(admin, 'POST', '/v1/tokens', { role, ...(person ? { person } : {}), label: `browser ${role}` })).token;
  await call(admin, 'POST', '/v1/cluster', { toml: readFileSync(path.join(sourceDir, 'examples/clusters/mixed.toml'), 'utf8') });
  const officer = await token('officer');
  const operator = await token('operator');
  const now = Math.floor(Date.now() / 1000);
  const closes = now + closeDelayS;
  await call(officer, 'POST', '/v1/programs', { toml: programToml(now, closes) });
  const p = `/v1/programs/${PROGRAM}`;
  for (const [id, type, country] of [['northfield', 'r1', 'US'], ['lakeshore', 'r1', 'US'], ['cascadia', 'r1', 'CA'], ['thames', 'r1', 'GB'], ['deccan', 'r2', 'IN'], ['pampas', 'minority_serving', 'AR']]) {
    await call(officer, 'POST', `${p}/institutions`, { id, name: `${id} university`, type, country });
  }
  const people = [
    [PEOPLE.pi1, 'northfield', false], [PEOPLE.pi2, 'lakeshore', false], [PEOPLE.pi3, 'pampas', false],
    [PEOPLE.reviewerA, 'cascadia', true], [PEOPLE.reviewerB, 'thames', true], [PEOPLE.conflicted, 'deccan', true],
  ];
  for (const [id, institution, reviewer] of people) {
    await call(officer, 'POST', `${p}/people`, { id, name: `Person ${id}`, institution, role: 'faculty', expertise: ['compilers', 'ml-systems'], reviewer });
  }
  await call(officer, 'POST', `${p}/calls/${CALL}/open`, {});
  const tokens = { admin, officer, operator, sponsor: await token('sponsor', PEOPLE.sponsor) };
  for (const key of ['pi1', 'pi2', 'pi3']) tokens[key] = await token('researcher', PEOPLE[key]);
  const proposals = [['D1', 'pi1', '4000000', 'compilers'], ['D2', 'pi2', '3000000', 'ml-systems'], ['D3', 'pi3', '2500000', 'responsible-ai']];
  for (const [id, pi, requested, topic] of proposals) {
    await call(tokens[pi], 'POST', `${p}/proposals`, {
      id, call: CALL, title: `Proposal ${id}`, abstract: 'Compilers for accelerators.', topics: [topic], requested, duration_months: 12, open_source_plan: 'Apache-2.0',
    });
  }
  for (const key of ['reviewerA', 'reviewerB', 'conflicted']) tokens[key] = await token('reviewer', PEOPLE[key]);
  await call(tokens.conflicted, 'POST', `${p}/conflicts`, { proposal: 'D1', note: 'co-authored last year' });
  const wait = closes * 1000 - Date.now() + 300;
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  await call(officer, 'POST', `${p}/calls/${CALL}/close`, {});
  await call(officer, 'POST', `${p}/calls/${CALL}/assign`, {});
  // Every review but reviewer A's last one.
  let left = null;
  for (const key of ['reviewerA', 'reviewerB', 'conflicted']) {
    const assigned = (await call(tokens[key], 'GET', `${p}/proposals`)).items;
    for (const [index, proposal] of assigned.entries()) {
      if (key === 'reviewerA' && index === assigned.length - 1) {
        left = proposal.id;
        continue;
      }
      await call(tokens[key], 'POST', `${p}/reviews`, { proposal: proposal.id, scores: [5, 4], comment: 'clear plan' });
    }
  }
  return { tokens, call, left, programPath: p };
}
