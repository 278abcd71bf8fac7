// Drives cratond's web page in the system Chromium for daemon/tests/ui_chromium.rs:
// logs in with a token, says {"ready":true} on stdout, reads two run ids from
// stdin, watches the first run's page until it ends (counters over time, one
// deliberate drop of the event stream halfway), approves the second (which
// waits for approval) on its page, then prints what the page showed as one
// JSON line. The Rust test compares that with the API.
//
// Environment: CRATON_UI_BASE (http://127.0.0.1:PORT), CRATON_UI_TOKEN,
// CRATON_TEST_CHROMIUM (default /usr/bin/chromium), CRATON_UI_SCREENSHOT
// (a PNG path, optional), CRATON_UI_TIMEOUT_MS (default 180000), UI_DEBUG=1
// (the page's console.log and long tasks on stderr).
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';

const base = process.env.CRATON_UI_BASE;
const token = process.env.CRATON_UI_TOKEN;
const executablePath = process.env.CRATON_TEST_CHROMIUM || '/usr/bin/chromium';
const screenshot = process.env.CRATON_UI_SCREENSHOT || '';
const timeoutMs = Number(process.env.CRATON_UI_TIMEOUT_MS || 180000);
if (!base || !token) throw new Error('CRATON_UI_BASE and CRATON_UI_TOKEN are required');

const STATUSES = ['hosts', 'ok', 'changed', 'failed', 'unreachable', 'skipped', 'running', 'pending', 'not_run'];
const say = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'craton-ui-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
    '--no-first-run', '--disable-component-update', '--disable-sync',
  ],
  viewport: { width: 1400, height: 1000 },
});
const errors = [];
const eventRequests = []; // each /events request: its Last-Event-ID
try {
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(timeoutMs);
  page.on('console', (m) => { if (process.env.UI_DEBUG && m.type() === 'log') process.stderr.write(m.text() + '\n'); });
  page.on('console', (m) => { if (m.type() === 'error') errors.push('console: ' + m.text()); });
  page.on('pageerror', (e) => errors.push('pageerror: ' + e.message));
  page.on('response', (r) => { if (r.status() >= 400) errors.push('HTTP ' + r.status() + ' ' + r.url()); });
  page.on('request', (r) => {
    if (/\/v1\/runs\/\d+\/events/.test(r.url())) eventRequests.push(r.headers()['last-event-id'] || null);
  });
  await page.addInitScript(() => {
    // How smooth the page stays: main-thread tasks over 50 ms, and the
    // longest gap between two animation frames.
    window.__perf = { longtasks: 0, longest_task_ms: 0, max_frame_gap_ms: 0 };
    new PerformanceObserver((l) => {
      for (const e of l.getEntries()) {
        window.__perf.longtasks++; if (e.duration > 100) console.log('longtask ' + Math.round(e.duration) + ' at ' + Math.round(e.startTime));
        window.__perf.longest_task_ms = Math.max(window.__perf.longest_task_ms, Math.round(e.duration));
      }
    }).observe({ type: 'longtask', buffered: true });
    let last = 0;
    const tick = (t) => {
      if (last && document.visibilityState === 'visible') {
        window.__perf.max_frame_gap_ms = Math.max(window.__perf.max_frame_gap_ms, Math.round(t - last));
      }
      last = t;
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
    document.addEventListener('securitypolicyviolation', (e) => {
      console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI);
    });
  });

  // Log in.
  await page.goto(base + '/ui/');
  await page.waitForSelector('#view-login:not([hidden])');
  await page.fill('#login-token', token);
  await page.click('#login-submit');
  await page.waitForSelector('#view-runs:not([hidden]), #login-error:not([hidden])');
  if (await page.isVisible('#login-error')) throw new Error('login refused: ' + (await page.textContent('#login-error')));
  const stored = await page.evaluate(() => sessionStorage.getItem('craton.token'));
  say({ ready: true, token_in_session_storage: stored === token });

  // "ID GATED": the run to watch, and a run waiting for approval.
  const { value: line } = await lines.next();
  const [id, gated] = String(line).trim().split(/\s+/).map(Number);
  if (!id || !gated) throw new Error('no run ids on stdin: ' + line);

  // The run page, sampled every 50 ms until it says the run ended.
  await page.evaluate((h) => { location.hash = h; }, '#/runs/' + id);
  await page.waitForSelector('#view-run:not([hidden])');
  await page.evaluate(() => { Object.assign(window.__perf, { longtasks: 0, longest_task_ms: 0, max_frame_gap_ms: 0 }); });
  const read = () => page.evaluate((names) => {
    const c = {};
    for (const n of names) c[n] = Number(document.querySelector('[data-count="' + n + '"]').textContent);
    return {
      status: document.getElementById('run-status').textContent,
      counts: c,
      ended: document.body.dataset.runEnded || null,
    };
  }, STATUSES);
  const snapshots = [];
  let dropAt = null;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await read();
    if (s.ended === String(id)) break;
    const last = snapshots[snapshots.length - 1];
    if (!last || JSON.stringify(last.counts) !== JSON.stringify(s.counts) || last.status !== s.status) {
      snapshots.push({ t: Date.now(), status: s.status, counts: s.counts });
    }
    // Once some hosts have results, cut the stream once: the page must
    // resume after the last event it saw, missing and repeating none.
    if (dropAt === null && s.counts.ok + s.counts.changed + s.counts.failed + s.counts.unreachable > 0) {
      const dropped = await page.evaluate(() => window.cratonDropStream && window.cratonDropStream());
      if (dropped) dropAt = { t: Date.now(), counts: s.counts };
    }
    if (Date.now() > deadline) throw new Error('the run page did not end in time: ' + JSON.stringify(s));
    await page.waitForTimeout(50);
  }

  const final = await read();
  const hosts = await page.$$eval('#hosts-body [data-host]', (rows) => rows.map((r) => ({
    host: r.dataset.host,
    status: r.dataset.status,
    derived: r.dataset.derived || null,
    live: r.dataset.live || null,
    task: r.children[2].textContent,
  })));
  const bar = await page.$$eval('[data-seg]', (segs) => Object.fromEntries(segs.map((s) => [s.dataset.seg, s.style.width])));
  const stdout = await page.textContent('#stdout');
  const perf = await page.evaluate(() => window.__perf);
  const connects = Number(await page.getAttribute('#run-stream', 'data-connects'));
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });

  // The runs list shows it, with its final status and counts.
  await page.evaluate(() => { location.hash = '#/runs'; });
  const row = await page.waitForSelector('#runs-body tr[data-run="' + id + '"]:not([data-status="running"]):not([data-status="queued"])');
  const list = await row.evaluate((r) => {
    const o = { status: r.dataset.status, playbook: r.children[2].textContent, href: r.querySelector('a').getAttribute('href') };
    for (const td of r.querySelectorAll('[data-col]')) o[td.dataset.col] = td.textContent;
    return o;
  });

  // Every row's "waiting for" cell: the queue as the list shows it.
  const queue = await page.$$eval('#runs-body tr[data-run]', (rows) => rows.map((r) => ({
    run: Number(r.dataset.run),
    status: r.dataset.status,
    waiting: r.querySelector('[data-col="waiting"]').textContent,
  })));
  // The project's windows beside it: when the waiting runs may start.
  await page.waitForSelector('#windows:not([hidden])');
  const windows = await page.$$eval('#windows-body tr', (rows) => rows.map((r) => ({
    name: r.children[0].textContent, group: r.children[1].textContent,
    opens: r.querySelector('[data-col="opens"]').textContent, open: r.dataset.open,
  })));

  // The run waiting for approval: its page says so and offers the
  // answer; clicking Approve shows the answered run.
  await page.evaluate((h) => { location.hash = h; }, '#/runs/' + gated);
  await page.waitForSelector('#run-actions:not([hidden])');
  const waitingText = () => page.evaluate(() => {
    const dd = document.querySelector('[data-field="waiting for"]');
    return dd ? dd.textContent : '';
  });
  const approval = { before: await waitingText() };
  await page.click('#run-approve');
  await page.waitForSelector('#run-actions[hidden]', { state: 'attached' });
  approval.after = await waitingText();
  approval.status = await page.textContent('#run-status');

  // "ROLLED": a rollout that stopped after its first batch. Its page
  // shows the batches and offers Resume, which opens the new run.
  const { value: line2 } = await lines.next();
  const rolled = Number(String(line2).trim());
  if (!rolled) throw new Error('no rollout id on stdin: ' + line2);
  await page.evaluate((h) => { location.hash = h; }, '#/runs/' + rolled);
  await page.waitForFunction((r) => document.body.dataset.runEnded === String(r), rolled, { timeout: 180000 });
  await page.waitForSelector('#run-resume:not([hidden])');
  const batchRows = () => page.$$eval('#run-batches-body tr', (rs) => rs.map((r) => ({
    seq: Number(r.dataset.seq), status: r.dataset.status, hosts: r.children[2].textContent })));
  const rollout = { rolled, before: await batchRows() };
  await page.click('#run-resume');
  await page.waitForFunction((r) => /^#\/runs\/\d+$/.test(location.hash) && location.hash !== '#/runs/' + r, rolled);
  rollout.resumed = Number((await page.evaluate(() => location.hash)).split('/').pop());
  await page.waitForFunction(() => /resumes #/.test(document.getElementById('run-batches-note').textContent), null, { timeout: 30000 });
  rollout.after = await batchRows();
  rollout.note = await page.textContent('#run-batches-note');

  say({ id, snapshots, drop: dropAt, event_requests: eventRequests, connects, final, hosts, bar, stdout, list, queue, windows, approval, rollout, perf, errors });
} catch (e) {
  // One line the Rust test can show, rather than a silent hang.
  say({ error: String((e && e.stack) || e), errors });
  process.exitCode = 1;
} finally {
  await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
process.exit(process.exitCode || 0);
