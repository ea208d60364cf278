// The dashboard in a real browser: Debian's chromium (scripts/ci-deps.sh installs it) driven by
// playwright-core. One element per worker; a worker whose loop starts blocking turns red within
// 3 s; a reload (SIGHUP) adds a marker; a worker's CPU profile downloads and its loop breakdown shows;
// no console errors; a page open across master restarts follows the new master (its markers, its
// action buttons). Leaves screenshots in test-results/.
import { mkdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Download } from 'playwright-core';
import { execa } from 'execa';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { CLI, fixture, get, killOnTeardown, startCluster, waitFor } from '../helpers/cluster.js';
import { control } from '../helpers/control.js';
import { browserTest, CHROMIUM } from '../helpers/browser.js';

const RESULTS = fileURLToPath(new URL('../../test-results/', import.meta.url));


browserTest('a worker blocking 200 ms a second (lag p99 ~200 ms) is amber, the others not; with the token, Restart works', async (t) => {
  const cluster = await startCluster(fixture('blocks-worker-1.js'), { instances: 2, flags: ['--dashboard', '127.0.0.1:0', '--stats-interval', '250ms', '--dashboard-token', 's3cret'] });
  t.teardown(() => cluster.stop());
  const url = cluster.lines.find((line) => line.event === 'ready')!.dashboard as string;
  const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  t.teardown(() => browser.close());
  const page = await browser.newPage();
  await page.goto(url);
  await page.waitForSelector('[data-worker-id="1"].amber', { timeout: 10_000 });
  // Worker 2 only idles (a booting worker's first samples may lag: loading, compiling).
  await page.waitForSelector('[data-worker-id="2"][data-level="ok"]', { timeout: 10_000 });
  // Its 2 s always hold a block: it never flickers back to ok (on a loaded machine a block may read
  // past 500 ms, which is red: the lag the worker really had).
  t.not(await page.getAttribute('[data-worker-id="1"]', 'data-level'), 'ok');

  // The actions: a wrong token is refused, the right one restarts worker 2 (a marker says so).
  await page.fill('#token', 'wrong');
  await page.click('[data-worker-id="2"] button.restart');
  // Locators, not waitForFunction: a string predicate is an eval, which the page's CSP may refuse.
  await page.locator('#action-result', { hasText: 'wrong dashboard token' }).waitFor({ timeout: 10_000 });
  await page.fill('#token', 's3cret');
  await page.click('[data-worker-id="2"] button.restart');
  await page.waitForSelector('#marker-list li.restart', { timeout: 30_000 });
  t.regex(await page.textContent('#marker-list li.restart') ?? '', /restart of worker 2 done/);
  await cluster.waitForLine((line) => line.event === 'operation' && line.operation === 'restart' && line.worker === 2);

  // From here on the page must log no error (the wrong token's 401 above is one, by design).
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(error.message));
  // The worker's captures: a CPU profile downloads as a .cpuprofile, the loop's phases show as a table.
  await page.fill('#capture-duration', '300ms');
  await page.click('[data-worker-id="2"] details.capture summary');
  // Seen once on CI (Node 24, a loaded box): no download within 30 s, cause unknown. A worker the
  // master reads as blocked right then (a starved loop) rightly gives no profile: asked again. Any
  // other failure says what the page showed and the master's last lines.
  let download: Download | undefined;
  for (let attempt = 1; !download; attempt++) {
    const downloading = page.waitForEvent('download', { timeout: 60_000 });
    downloading.catch(() => {});
    await page.click('[data-worker-id="2"] button.profile', { timeout: 30_000 });
    // This attempt's line: the newest (the last attempt's stays below it).
    const blocked = page.locator('#action-result li:first-child', { hasText: 'event loop is blocked' }).waitFor({ timeout: 60_000 }).then(() => 'blocked' as const);
    blocked.catch(() => {});
    const outcome = await Promise.race([downloading, blocked]).catch(async (error: Error) => {
      const said = await page.textContent('#action-result');
      const last = cluster.lines.slice(-15).map((line) => JSON.stringify(line).slice(0, 300));
      throw new Error(`${error.message.split('\n')[0]}; the page said: ${said}; the master's last lines:\n${last.join('\n')}`);
    });
    if (outcome !== 'blocked') download = outcome;
    else if (attempt === 3) t.fail(`worker 2 read as blocked three times: ${await page.textContent('#action-result')}`);
    else t.log(`attempt ${attempt}: ${await page.textContent('#action-result')}`);
    if (attempt === 3) break;
  }
  if (!download) return;
  t.regex(download.suggestedFilename(), /^blocks-worker-1-w2-\d{8}T\d{6}\.cpuprofile$/);
  const profile = JSON.parse(readFileSync((await download.path())!, 'utf8')) as { nodes: unknown };
  t.true(Array.isArray(profile.nodes) && profile.nodes.length > 0);
  await page.locator('#action-result', { hasText: 'downloaded' }).waitFor({ timeout: 10_000 });
  await page.click('[data-worker-id="2"] button.loop');
  await page.waitForSelector('[data-worker-id="2"] .loop-result table tr[data-phase="poll"]', { timeout: 30_000 });
  t.is((await page.$$('[data-worker-id="2"] .loop-result table tr[data-phase]')).length, 8);
  mkdirSync(RESULTS, { recursive: true });
  await page.screenshot({ path: `${RESULTS}dashboard-loop.png`, fullPage: true });
  t.deepEqual(errors, []);
});

browserTest('the page: one element per worker, red within 3 s of blocking, a marker on reload, no console errors', async (t) => {
  // A short interval: a sample (and a tick of the page's stream) every 250 ms.
  const cluster = await startCluster(fixture('blocks-worker-1-on-signal.js'), { instances: 2, flags: ['--dashboard', '127.0.0.1:0', '--stats-interval', '250ms'] });
  t.teardown(() => cluster.stop());
  const ready = cluster.lines.find((line) => line.event === 'ready')!;
  const url = ready.dashboard as string;

  const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  // Every message the page's stream delivers, as the master built it: its time (the master's clock)
  // and each worker's recentLagP99, what the page colours by. Recorded before the page's own
  // listener runs, without touching the page's code.
  // (A string: the page has no DOM types here, and a function would be sent as tsx compiled it.)
  await page.addInitScript(`
    window.__clusterdMessages = [];
    const Native = window.EventSource;
    window.EventSource = class extends Native {
      constructor(...args) {
        super(...args);
        this.addEventListener('message', (event) => {
          const message = JSON.parse(event.data);
          window.__clusterdMessages.push({ now: message.now, lag: Object.fromEntries(message.workers.map((worker) => [worker.id, worker.recentLagP99])) });
        });
      }
    };
  `);
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(url);

  await page.locator('[data-worker-id="2"]').waitFor({ timeout: 10_000 });
  t.deepEqual(await page.$$eval('[data-worker-id]', (nodes) => nodes.map((node) => node.getAttribute('data-worker-id'))), ['1', '2']);
  // Figures in, and calm once boot (loading, compiling) is over.
  await page.waitForSelector('[data-worker-id="1"] .figures b', { timeout: 10_000 });
  await page.waitForSelector('[data-worker-id="1"][data-level="ok"]', { timeout: 10_000 });

  process.kill(cluster.pids[0]!, 'SIGUSR2');
  const blockedAt = Date.now();
  // The page must turn red; how soon is measured on the master's clock, not by these waits (on a
  // loaded machine the browser and this process may be the ones that are late). A message built after the signal that colours worker 1 red (lag p99 past the page's 500 ms): the
  // page may have shown it red before, from a lag the loaded box caused, so the wait is for this one.
  // (Polled from here: the page's CSP refuses the string evaluation waitForFunction would use.)
  type Seen = { now: number; lag: Record<string, number> };
  const firstRed = await waitFor(async () => ((await page.evaluate('window.__clusterdMessages')) as Seen[]).find((message) => message.now >= blockedAt && (message.lag['1'] ?? 0) > 500), {
    timeoutMs: 15_000,
    what: 'a message colouring worker 1 red',
  });
  await page.waitForSelector('[data-worker-id="1"].red', { timeout: 15_000 });
  t.log(`worker 1 red on the page ${Date.now() - blockedAt} ms after it was sent SIGUSR2 (this test's clock)`);
  // Red within 3 s of the block (the contract): the first such message was built by the
  // master within 3 s of the signal.
  t.log(`the master sent worker 1 as red ${firstRed.now - blockedAt} ms after it was sent SIGUSR2`);
  t.true(firstRed.now - blockedAt <= 3000, `red ${firstRed.now - blockedAt} ms after the block started`);
  // Worker 2 is not red while worker 1 keeps blocking. A starved machine (CI, Node 24: 1.8 s to red) can
  // lag worker 2's own loop past 500 ms for a moment: then it must drop back while worker 1 stays red.
  // One selector, checked in one go: both levels are read from the same rendering of the page.
  await page.waitForSelector('#workers:has([data-worker-id="1"][data-level="red"]):has([data-worker-id="2"]:not([data-level="red"]))', { timeout: 10_000 });
  // Its detail: where it blocks (--report-blocked's site) and the stack.
  await page.click('[data-worker-id="1"] .detail summary');
  await page.waitForSelector('[data-worker-id="1"] .sites li', { timeout: 5000 });
  t.regex(await page.textContent('[data-worker-id="1"] .sites li') ?? '', /blockFor700ms/);
  // The stack comes with the block's report, which can follow its site by an update (CI, Node 24: empty when read at once).
  const stack = await waitFor(async () => {
    const text = (await page.textContent('[data-worker-id="1"] .last-stack')) ?? '';
    return text.trim() === '' ? null : text;
  }, { timeoutMs: 10_000, what: 'worker 1\'s last stack on the page' });
  t.regex(stack, /at blockFor700ms/);
  // Its blocked-loop tick on the lag chart: a click shows the report with its stack.
  // The chart is redrawn on every update, so the tick read may be replaced before the click: again until it lands.
  const deadline = Date.now() + 10_000;
  while (await page.isHidden('#marker-detail')) {
    if (Date.now() > deadline) t.fail('no click on the blocked tick showed its marker within 10 s');
    if (Date.now() > deadline) break;
    const tick = await page.locator('[data-worker-id="1"] svg.lag .tick.blocked').boundingBox();
    if (tick) await page.mouse.click(tick.x + tick.width / 2, tick.y + tick.height / 2);
  }
  t.regex(await page.textContent('#marker-detail') ?? '', /blocked: [^\n]*\n {4}at blockFor700ms/);
  mkdirSync(RESULTS, { recursive: true });
  await page.screenshot({ path: `${RESULTS}dashboard-red.png`, fullPage: true });
  t.true(await page.isHidden('#actions'), 'read-only: no action buttons');

  process.kill(cluster.masterPid, 'SIGHUP');
  await page.waitForSelector('#marker-list li.reload', { timeout: 30_000 });
  t.regex(await page.textContent('#marker-list li.reload') ?? '', /generation 2/);
  t.true((await page.$$('svg.chart .tick.reload')).length >= 1, 'a reload tick on the charts');
  // Every figure over the window: lag p50/p99/max on one chart, the menu's pick on the other.
  t.is(await page.locator('[data-worker-id="1"] svg.lag polyline').count(), 3);
  await page.selectOption('#metric', 'memory');
  await page.waitForSelector('[data-worker-id="1"] svg.metric polyline.low', { timeout: 5000 });
  t.is(await page.locator('[data-worker-id="1"] svg.metric polyline').count(), 2, 'RSS and heap');
  t.regex(await page.textContent('[data-worker-id="1"] svg.metric >> xpath=..') ?? '', /RSS \/ heap used/);

  await page.screenshot({ path: `${RESULTS}dashboard.png`, fullPage: true });
  t.deepEqual(errors, []);
});

browserTest('a worker whose loop is blocked for good reads `blocked for N s` and is red, though its last sample was calm', async (t) => {
  // A blocked loop sends no samples: the card kept its last calm figures, `ready` and green.
  const cluster = await startCluster(fixture('busy-on-request.js'), { instances: 1, flags: ['--dashboard', '127.0.0.1:0', '--stats-interval', '250ms', '--watchdog', '0'] });
  t.teardown(() => cluster.stop('SIGKILL'));
  const url = cluster.lines.find((line) => line.event === 'ready')!.dashboard as string;
  const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  t.teardown(() => browser.close());
  const page = await browser.newPage();
  await page.goto(url);
  await page.locator('[data-worker-id="1"] .state', { hasText: '· ready ·' }).waitFor({ timeout: 10_000 });
  await get(cluster.port, '/spin');
  await page.locator('[data-worker-id="1"] .state', { hasText: /· blocked for \d+\.\d s ·/ }).waitFor({ timeout: 15_000 });
  t.is(await page.getAttribute('[data-worker-id="1"]', 'data-level'), 'red');
});

browserTest('the page served by `clusterd dashboard` for a cluster started without --dashboard: one element per worker, no console errors', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('hello.js'), { instances: 2, flags: ['--name', 'dashpage', '--stats-interval', '250ms'], env: ctl.env });
  t.teardown(() => cluster.stop());
  const child = execa(process.execPath, [CLI, 'dashboard', 'dashpage'], { env: ctl.env, reject: false, buffer: false, stdin: 'ignore' });
  killOnTeardown(t, child);
  const [url] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];

  const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  t.teardown(() => browser.close());
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(url);
  await page.locator('[data-worker-id="2"] .figures b').first().waitFor({ timeout: 10_000 });
  t.deepEqual(await page.$$eval('[data-worker-id]', (nodes) => nodes.map((node) => node.getAttribute('data-worker-id'))), ['1', '2']);
  t.is(await page.textContent('#name'), 'clusterd: dashpage');
  t.true(await page.isHidden('#actions'), 'read-only without --dashboard-token');
  t.deepEqual(errors, []);
  child.kill('SIGTERM');
  t.is((await child).exitCode, 0);
});

browserTest('a page open across master restarts shows the new master\'s markers, not the old one\'s, and the action buttons its token setting allows', async (t) => {
  // The old master, read-only: a reload makes its one marker.
  const first = await startCluster(fixture('hello.js'), { instances: 2, flags: ['--name', 'dash-remaster', '--dashboard', '127.0.0.1:0', '--stats-interval', '250ms'] });
  t.teardown(() => first.stop());
  const url = first.lines.find((line) => line.event === 'ready')!.dashboard as string;
  const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  t.teardown(() => browser.close());
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(url);
  await page.locator('[data-worker-id="2"]').waitFor({ timeout: 10_000 });
  t.is(await page.locator('section.worker button').count(), 0, 'read-only: no buttons on the cards');
  process.kill(first.masterPid, 'SIGHUP');
  await page.locator('#marker-list li.reload', { hasText: 'reload: generation 2' }).waitFor({ timeout: 30_000 });

  // The page stays away (offline) until the new master has its restart marker, numbered 1 as the old
  // one's reload was when nothing else is marked first: its first snapshot can hold as many markers,
  // with the same numbers. Only the markers this test makes are compared: on a loaded machine a
  // freshly started worker's loop may block past --report-blocked (a `blocked` marker of its own).
  const made = '#marker-list li.reload, #marker-list li.restart';
  await context.setOffline(true);
  await first.stop();
  const second = await startCluster(fixture('hello.js'), { instances: 2, flags: ['--name', 'dash-remaster', '--dashboard', new URL(url).host, '--stats-interval', '250ms', '--dashboard-token', 's3cret'] });
  t.teardown(() => second.stop());
  const response = await fetch(new URL('api/restart/2', url), { method: 'POST', headers: { Authorization: 'Bearer s3cret' } });
  t.is(response.status, 200);
  const status = (await (await fetch(new URL('api/status', url))).json()) as { markers: Array<{ kind: string; text: string }> };
  const actions = status.markers.filter((marker) => marker.kind === 'reload' || marker.kind === 'restart');
  t.deepEqual(actions.map((marker) => [marker.kind, marker.text]), [['restart', 'restart of worker 2 done']]);
  await context.setOffline(false);
  // The page reconnects by itself; the new master's snapshot shows the token field, and its markers.
  await page.locator('#token').waitFor({ state: 'visible', timeout: 30_000 });
  t.deepEqual(await page.$$eval(made, (items) => items.map((item) => item.lastElementChild!.textContent)), ['restart of worker 2 done']);
  // The cards have the actions the header offers, and they work.
  for (const id of ['1', '2']) t.is(await page.locator(`[data-worker-id="${id}"] button.restart, [data-worker-id="${id}"] button.profile, [data-worker-id="${id}"] button.loop`).count(), 3);
  await page.fill('#token', 's3cret');
  await page.click('[data-worker-id="1"] button.restart');
  await page.locator('#action-result', { hasText: 'restart of worker 1 done' }).waitFor({ timeout: 30_000 });

  // And back to read-only: no card keeps a button that would only answer 403.
  await second.stop();
  const third = await startCluster(fixture('hello.js'), { instances: 2, flags: ['--name', 'dash-remaster', '--dashboard', new URL(url).host, '--stats-interval', '250ms'] });
  t.teardown(() => third.stop());
  await page.locator('#token').waitFor({ state: 'hidden', timeout: 30_000 });
  await page.locator('[data-worker-id="2"]').waitFor({ timeout: 10_000 });
  t.is(await page.locator('section.worker button').count(), 0);
  t.deepEqual(errors, []);
});

browserTest('at 360 px wide (a phone) nothing scrolls sideways, and the header\'s actions and the cards\' buttons are on screen', async (t) => {
  const cluster = await startCluster(fixture('hello.js'), { instances: 2, flags: ['--dashboard', '127.0.0.1:0', '--stats-interval', '250ms', '--dashboard-token', 's3cret'] });
  t.teardown(() => cluster.stop());
  const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  t.teardown(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 360, height: 800 } });
  await page.goto(cluster.lines.find((line) => line.event === 'ready')!.dashboard as string);
  await page.locator('[data-worker-id="2"] .figures b').first().waitFor({ timeout: 10_000 });
  await page.locator('#token').waitFor({ state: 'visible', timeout: 10_000 });
  await page.click('[data-worker-id="1"] details.capture summary');
  // (A string: the page has no DOM types here.) Every control a user acts with, where it is drawn.
  const layout = (await page.evaluate(`({
    width: window.innerWidth,
    scrollWidth: document.documentElement.scrollWidth,
    controls: [...document.querySelectorAll('header input, header select, header button, .worker button')]
      .filter((node) => node.getClientRects().length > 0)
      .map((node) => {
        const box = node.getBoundingClientRect();
        return { what: node.id || node.getAttribute('aria-label') || node.className, left: box.left, right: box.right };
      }),
  })`)) as { width: number; scrollWidth: number; controls: Array<{ what: string; left: number; right: number }> };
  mkdirSync(RESULTS, { recursive: true });
  await page.screenshot({ path: `${RESULTS}dashboard-360.png`, fullPage: true });
  t.is(layout.scrollWidth, layout.width, 'no sideways scroll');
  // The token field, Reload, the capture field, the menu; Restart, CPU profile and Loop breakdown of each card (one opened).
  t.true(layout.controls.length >= 8, JSON.stringify(layout.controls));
  const off = layout.controls.filter(({ left, right }) => left < 0 || right > layout.width);
  t.deepEqual(off, [], 'every control within the viewport');
});

browserTest('a worker whose app closed every server (not listening) is red, says so, and its closing and listening again are one marker', async (t) => {
  const cluster = await startCluster(fixture('closes-its-server.js'), { instances: 2, flags: ['--dashboard', '127.0.0.1:0', '--stats-interval', '250ms'] });
  t.teardown(() => cluster.stop('SIGKILL'));
  const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  t.teardown(() => browser.close());
  const page = await browser.newPage();
  await page.goto(cluster.lines.find((line) => line.event === 'ready')!.dashboard as string);
  await page.locator('[data-worker-id="2"] .figures b').first().waitFor({ timeout: 10_000 });
  process.kill(cluster.pids[1]!, 'SIGUSR2');
  await cluster.waitForLine((line) => line.event === 'worker-not-listening' && line.worker === 2);
  await page.locator('[data-worker-id="2"][data-level="red"] .level', { hasText: 'red: not listening' }).waitFor({ timeout: 10_000 });
  await page.locator('#totals', { hasText: 'workers 1/2 ready' }).waitFor({ timeout: 10_000 });
  await page.locator('#marker-list li.listening', { hasText: /worker 2 \(pid \d+\) closed every server/ }).waitFor({ timeout: 10_000 });
  t.is(await page.locator('[data-worker-id="2"] svg.lag .tick.listening').count(), 1, 'a tick on its chart');

  process.kill(cluster.pids[1]!, 'SIGUSR2');
  await cluster.waitForLine((line) => line.event === 'worker-listening' && line.worker === 2);
  await page.locator('#marker-list li.listening', { hasText: /worker 2 \(pid \d+\) listens again/ }).waitFor({ timeout: 10_000 });
  await page.locator('[data-worker-id="2"]:not([data-level="red"])').waitFor({ timeout: 10_000 });
  // Within 10 s of the close, listening again is merged into its marker (an app toggling its servers
  // would push restarts and reloads out of the list), which now says the latest.
  t.is(await page.locator('#marker-list li.listening').count(), 1);
});
