// The page's actions in a real browser (Debian's chromium, driven by playwright-core): each action's
// result on a line of its own, a refusal drawn apart from what happened, a blocked worker's stack
// under the capture's failure, and what a keyboard or a screen reader gets.
import { fixture, get, startCluster } from '../helpers/cluster.js';
import { browserTest, dashboardUrl, launch } from '../helpers/browser.js';

browserTest('each action keeps its own result line: a restart refused during a reload stays beside the reload\'s "done", and its marker is a failed one, not a restart', async (t) => {
  // Each new worker sleeps 1.5 s before it boots: the reload is still running when the restart is asked.
  const cluster = await startCluster(fixture('hello.js'), {
    instances: 2,
    flags: ['--dashboard', '127.0.0.1:0', '--stats-interval', '250ms', '--dashboard-token', 's3cret', `--node-arg=--require=${fixture('slow-preload.cjs')}`],
    env: { PRELOAD_SLEEP_MS: '1500' },
    readyTimeoutMs: 30_000,
  });
  t.teardown(() => cluster.stop());
  const url = dashboardUrl(cluster);
  const browser = await launch(t);
  const page = await browser.newPage();
  await page.goto(url);
  await page.locator('[data-worker-id="2"] button.restart').waitFor({ timeout: 10_000 });
  await page.fill('#token', 's3cret');
  await page.click('#reload');
  await page.locator('#action-result li', { hasText: 'reload…' }).waitFor({ timeout: 5000 });
  await page.click('[data-worker-id="2"] button.restart');
  await page.locator('#action-result li.failed', { hasText: /restart of worker 2: refused: .* in progress/ }).waitFor({ timeout: 10_000 });
  await page.locator('#action-result li.done', { hasText: 'reload done' }).waitFor({ timeout: 30_000 });
  // The refusal is still there, newest first, above the reload's line.
  t.deepEqual(await page.$$eval('#action-result li', (items) => items.map((item) => item.className)), ['failed', 'done']);
  // Its marker: a failed restart, drawn apart (dashed) from a restart that happened.
  await page.locator('#marker-list li.restart.failed').waitFor({ timeout: 10_000 });
  t.regex(await page.textContent('#marker-list li.restart.failed') ?? '', /restart \(failed\)/);
  t.is(await page.locator('#marker-list li.restart:not(.failed)').count(), 0);
  t.is(await page.locator('#cluster-lag .tick.restart.failed').count(), 1);
});

browserTest('a loop breakdown of a worker blocked for good shows where it is stuck: the 409\'s stack under its failure', async (t) => {
  const cluster = await startCluster(fixture('busy-on-request.js'), { instances: 1, flags: ['--dashboard', '127.0.0.1:0', '--stats-interval', '250ms', '--watchdog', '0', '--dashboard-token', 's3cret'] });
  t.teardown(() => cluster.stop('SIGKILL'));
  const url = dashboardUrl(cluster);
  const browser = await launch(t);
  const page = await browser.newPage();
  await page.goto(url);
  await page.locator('[data-worker-id="1"] .state', { hasText: '· ready ·' }).waitFor({ timeout: 10_000 });
  await get(cluster.port, '/spin');
  await page.locator('[data-worker-id="1"] .state', { hasText: /· blocked for \d+\.\d s ·/ }).waitFor({ timeout: 15_000 });
  await page.fill('#token', 's3cret');
  await page.fill('#capture-duration', '300ms');
  await page.click('[data-worker-id="1"] details.capture summary');
  await page.click('[data-worker-id="1"] button.loop');
  const failure = page.locator('#action-result li.failed', { hasText: 'loop breakdown of worker 1' });
  await failure.waitFor({ timeout: 15_000 });
  t.regex(await failure.locator('pre.stack').textContent() ?? '', /^ {4}at spinForever \(/m);
});

browserTest('keyboard and screen reader: markers open with Enter, buttons name their worker, the token field is labelled, levels are in words, results and level changes are said', async (t) => {
  const cluster = await startCluster(fixture('blocks-worker-1-on-signal.js'), { instances: 2, flags: ['--dashboard', '127.0.0.1:0', '--stats-interval', '250ms', '--dashboard-token', 's3cret'] });
  t.teardown(() => cluster.stop());
  const url = dashboardUrl(cluster);
  const browser = await launch(t);
  const page = await browser.newPage();
  await page.goto(url);
  await page.getByRole('button', { name: 'Restart worker 2', exact: true }).waitFor({ timeout: 10_000 });
  // (In a closed <details>: out of the accessibility tree until it is opened.)
  t.is(await page.locator('button.loop[aria-label="Loop breakdown of worker 1"]').count(), 1);
  t.is(await page.getByLabel('token').getAttribute('id'), 'token');

  // A level the page opened on is shown, not said; a change is said. Worker 1 idles until SIGUSR2 (a
  // loaded box may lag it past amber for a moment: wait for ok), then blocks 700 ms a second: red, in
  // words as well, and said.
  await page.waitForSelector('[data-worker-id="1"][data-level="ok"]', { timeout: 15_000 });
  process.kill(cluster.pids[0]!, 'SIGUSR2');
  await page.waitForSelector('[data-worker-id="1"].red', { timeout: 15_000 });
  t.regex(await page.textContent('[data-worker-id="1"] .level') ?? '', /^red: (lag p99 over \d+ ms|loop blocked)$/);
  await page.locator('#announce', { hasText: /worker 1: red/ }).waitFor({ timeout: 10_000 });

  // Enter in the token field does not submit the form (the page reloaded); an action's result is said.
  await page.fill('#token', 'wrong');
  await page.press('#token', 'Enter');
  t.is(new URL(page.url()).search, '');
  await page.getByRole('button', { name: 'Restart worker 2', exact: true }).click();
  await page.locator('#announce', { hasText: 'restart of worker 2: wrong dashboard token' }).waitFor({ timeout: 10_000 });

  // A marker in the list: focusable, opened with Enter.
  process.kill(cluster.masterPid, 'SIGHUP');
  const item = page.locator('#marker-list li.reload');
  await item.waitFor({ timeout: 30_000 });
  t.is(await item.getAttribute('tabindex'), '0');
  await item.focus();
  await page.keyboard.press('Enter');
  await page.locator('#marker-detail', { hasText: 'reload' }).waitFor({ state: 'visible', timeout: 5000 });
  t.pass();
});

browserTest('the marker list\'s numbers of three digits are not clipped (the list shows the last 200); a marker\'s detail does not repeat its kind', async (t) => {
  // 150 markers would take 150 reloads: the page gets the cluster's snapshot with 150 put in, and its
  // stream refused, so that what it draws is that snapshot.
  const cluster = await startCluster(fixture('hello.js'), { instances: 1, flags: ['--dashboard', '127.0.0.1:0', '--stats-interval', '250ms'] });
  t.teardown(() => cluster.stop());
  const url = dashboardUrl(cluster);
  const snapshot = (await (await fetch(new URL('api/status', url))).json()) as { now: number; markers: unknown[] };
  snapshot.markers = Array.from({ length: 150 }, (_, index) => ({ id: index + 1, seq: index + 1, time: snapshot.now - 1000 * (150 - index), kind: 'reload', worker: null, text: `reload: generation ${index + 2}` }));
  const browser = await launch(t);
  const page = await browser.newPage();
  await page.route('**/api/status', (route) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(snapshot) }));
  await page.route('**/events', (route) => route.fulfill({ status: 503, contentType: 'application/json', body: JSON.stringify({ error: 'too many dashboards connected (at most 64)', code: 'ERR_CLUSTERD_BUSY' }) }));
  await page.goto(url);
  await page.locator('#marker-list li').nth(149).waitFor({ state: 'attached', timeout: 10_000 });
  // The widest number, "150. ", as the list's own font draws it, against the room the list leaves for it.
  const room = (await page.evaluate(`(() => {
    const list = document.getElementById('marker-list');
    const probe = document.createElement('span');
    probe.style.whiteSpace = 'pre';
    probe.textContent = list.children.length + '. ';
    list.firstElementChild.append(probe);
    const width = probe.getBoundingClientRect().width;
    probe.remove();
    return { items: list.children.length, width, padding: parseFloat(getComputedStyle(list).paddingLeft) };
  })()`)) as { items: number; width: number; padding: number };
  t.is(room.items, 150);
  t.true(room.width <= room.padding, `"150. " is ${room.width} px wide; the list leaves ${room.padding} px`);
  // Its text names its kind: "reload: generation 151", not "reload: reload: generation 151".
  await page.click('#marker-list li:first-child');
  const detail = await page.textContent('#marker-detail') ?? '';
  t.regex(detail, / reload: generation 151$/);
  t.notRegex(detail, /reload: reload:/);
});
