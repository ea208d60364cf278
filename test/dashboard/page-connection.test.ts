// The page's connection in a real browser (Debian's chromium, driven by playwright-core): a refused
// stream is tried again, a master that stops answering greys the view out, and tabs of one browser
// share one stream, so that a seventh tab loads and its actions are not queued behind the streams.
import http from 'node:http';
import { fixture, startCluster } from '../helpers/cluster.js';
import { browserTest, dashboardUrl, launch } from '../helpers/browser.js';
import { MAX_STREAMS } from '../../src/dashboard/server.js';

/** `count` streams of /events held open; resolves once each has its answer's head. */
function holdStreams(url: string, count: number): Promise<http.ClientRequest[]> {
  return Promise.all(
    Array.from({ length: count }, () => new Promise<http.ClientRequest>((resolve, reject) => {
      const request = http.get(new URL('events', url), { agent: false }, (response) => {
        response.resume();
        resolve(request);
      });
      request.on('error', reject);
    })),
  );
}

browserTest('a page refused a stream (503: every place taken) shows the snapshot it has and says the dashboard is full, and tries again, with a wait, until it gets one', async (t) => {
  const cluster = await startCluster(fixture('hello.js'), { instances: 2, flags: ['--dashboard', '127.0.0.1:0', '--stats-interval', '250ms'] });
  t.teardown(() => cluster.stop());
  const url = dashboardUrl(cluster);
  const held = await holdStreams(url, MAX_STREAMS);
  t.teardown(() => {
    for (const request of held) request.destroy();
  });
  const browser = await launch(t);
  const page = await browser.newPage();
  await page.goto(url);
  // The 503's reason, not "disconnected"; and meanwhile the cluster as /api/status gave it, greyed out.
  await page.locator('#connection', { hasText: /^refused \(too many dashboards connected \(at most 64\)\): retrying in \d+ s/ }).waitFor({ timeout: 10_000 });
  await page.locator('[data-worker-id="2"] .figures b').first().waitFor({ timeout: 10_000 });
  t.regex(await page.textContent('#totals') ?? '', /workers 2\/2 ready/);
  t.true(await page.locator('body.stale').isVisible());
  t.regex(await page.textContent('#stale-note') ?? '', /Not live: the dashboard refused this page its live stream \(too many dashboards connected \(at most 64\)\)\. These figures are from/);
  for (const request of held.splice(0, 10)) request.destroy();
  await page.locator('#connection', { hasText: 'live' }).waitFor({ timeout: 20_000 });
  await page.locator('[data-worker-id="2"] .figures b').first().waitFor({ timeout: 10_000 });
  t.pass();
});

browserTest('a master that stops answering (SIGSTOP), then stops, greys out the whole view and says since when; the next message clears it; an action asked meanwhile is not sent, and never runs', async (t) => {
  const cluster = await startCluster(fixture('hello.js'), { instances: 2, flags: ['--dashboard', '127.0.0.1:0', '--stats-interval', '250ms', '--dashboard-token', 's3cret'] });
  t.teardown(() => cluster.stop());
  const url = dashboardUrl(cluster);
  const browser = await launch(t);
  const page = await browser.newPage();
  await page.goto(url);
  await page.locator('[data-worker-id="2"] .figures b').first().waitFor({ timeout: 10_000 });
  await page.locator('#connection', { hasText: 'live' }).waitFor({ timeout: 10_000 });
  t.is(await page.locator('body.stale').count(), 0);

  // Whatever happens below, the master runs again before it is stopped (teardowns run last first).
  t.teardown(() => {
    try {
      process.kill(cluster.masterPid, 'SIGCONT');
    } catch {
      // Stopped already.
    }
  });
  process.kill(cluster.masterPid, 'SIGSTOP');
  // The stream stays open, with nothing on it.
  await page.locator('#connection', { hasText: /^no update for \d+ s$/ }).waitFor({ timeout: 10_000 });
  await page.locator('body.stale').waitFor({ timeout: 5000 });
  t.regex(await page.textContent('#stale-note') ?? '', /Not live: the master sends nothing.*These figures are from/);
  t.true(await page.locator('#stale-note').isVisible());
  // An action the page says it did not send must not run once the master answers again.
  await page.fill('#token', 's3cret');
  await page.click('[data-worker-id="2"] button.restart');
  await page.locator('#action-result li.failed', { hasText: /restart of worker 2: not sent: no answer from the dashboard within \d+ s/ }).waitFor({ timeout: 15_000 });
  process.kill(cluster.masterPid, 'SIGCONT');
  await page.locator('body:not(.stale)').waitFor({ timeout: 10_000 });
  await page.locator('#connection', { hasText: 'live' }).waitFor({ timeout: 10_000 });
  t.true(await page.locator('#stale-note').isHidden());
  // A reload asked after it is done; a restart sent before would have been read first.
  t.is((await fetch(new URL('api/reload', url), { method: 'POST', headers: { Authorization: 'Bearer s3cret' } })).status, 200);
  t.false(cluster.lines.some((line) => line.event === 'operation-requested' && line.operation === 'restart'), 'the restart the page gave up on ran');

  await cluster.stop();
  await page.locator('body.stale').waitFor({ timeout: 10_000 });
  t.regex(await page.textContent('#connection') ?? '', /disconnected/);
  t.regex(await page.textContent('#stale-note') ?? '', /the connection to the master is lost/);
});

browserTest('eight tabs of one browser share one stream: all load and show live data, an action from the last completes, and the stream outlives the tab that held it', async (t) => {
  const cluster = await startCluster(fixture('hello.js'), { instances: 2, flags: ['--dashboard', '127.0.0.1:0', '--stats-interval', '250ms', '--dashboard-token', 's3cret'] });
  t.teardown(() => cluster.stop());
  const url = dashboardUrl(cluster);
  const browser = await launch(t);
  // One context: one browser profile, whose connections to the dashboard are 6 at most over HTTP/1.1.
  const context = await browser.newContext();
  const pages = [];
  for (let index = 0; index < 8; index++) {
    const page = await context.newPage();
    await page.goto(url, { timeout: 10_000 });
    await page.locator('[data-worker-id="2"] .figures b').first().waitFor({ timeout: 10_000 });
    pages.push(page);
  }
  for (const page of pages) await page.locator('#connection', { hasText: 'live' }).waitFor({ timeout: 10_000 });
  const last = pages.at(-1)!;
  await last.fill('#token', 's3cret');
  await last.click('[data-worker-id="1"] button.restart');
  await last.locator('#action-result li.done', { hasText: 'restart of worker 1 done' }).waitFor({ timeout: 30_000 });
  // Every tab sees its marker, the first (which holds the stream) as the others.
  for (const page of pages) await page.locator('#marker-list li.restart', { hasText: 'restart of worker 1 done' }).waitFor({ timeout: 10_000 });

  // The tab that holds the stream goes: another takes it over, and the rest stay live.
  await pages[0]!.close();
  process.kill(cluster.masterPid, 'SIGHUP');
  for (const page of pages.slice(1)) await page.locator('#marker-list li.reload', { hasText: 'generation 2' }).waitFor({ timeout: 30_000 });
  t.is(await last.locator('body.stale').count(), 0);
});

/** A proxy on 127.0.0.1 that serves each of `routes`' dashboards under its own prefix (`/a/` → a's `/`), streams included. */
async function prefixProxy(t: { teardown(fn: () => void): void }, routes: Record<string, string>): Promise<string> {
  const server = http.createServer((request, response) => {
    const [, prefix, rest] = /^\/([^/]+)(\/.*)$/.exec(request.url ?? '') ?? [];
    const target = prefix === undefined ? undefined : routes[prefix];
    if (target === undefined) return void response.writeHead(404).end();
    const upstream = new URL(target);
    const forwarded = http.request({ host: upstream.hostname, port: upstream.port, path: rest, method: request.method, headers: { ...request.headers, host: upstream.host } }, (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(response);
    });
    forwarded.on('error', () => response.destroy());
    request.pipe(forwarded);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

browserTest('two clusters\' dashboards under two paths of one site (a proxy\'s /a/ and /b/) each show their own cluster: the tabs share a stream only with the same dashboard\'s', async (t) => {
  const a = await startCluster(fixture('hello.js'), { instances: 2, flags: ['--dashboard', '127.0.0.1:0', '--stats-interval', '250ms'] });
  t.teardown(() => a.stop());
  const b = await startCluster(fixture('hello.js'), { instances: 3, flags: ['--dashboard', '127.0.0.1:0', '--stats-interval', '250ms'] });
  t.teardown(() => b.stop());
    const site = await prefixProxy(t, { a: dashboardUrl(a), b: dashboardUrl(b) });
  const browser = await launch(t);
  const context = await browser.newContext();
  const first = await context.newPage();
  await first.goto(`${site}/a/`);
  await first.locator('[data-worker-id="2"] .figures b').first().waitFor({ timeout: 10_000 });
  const second = await context.newPage();
  await second.goto(`${site}/b/`);
  // b has 3 workers; a tab fed a's stream showed a's 2, with a's pids.
  await second.locator('[data-worker-id="3"] .figures b').first().waitFor({ timeout: 10_000 });
  await second.locator('#connection', { hasText: 'live' }).waitFor({ timeout: 10_000 });
  const shown = async (page: typeof first): Promise<string[]> => page.locator('[data-worker-id] .state').allTextContents();
  const pidsOf = async (page: typeof first): Promise<number[]> => (await shown(page)).map((text) => Number(/pid (\d+)/.exec(text)?.[1]));
  t.deepEqual((await pidsOf(second)).sort(), [...b.pids].sort());
  t.deepEqual((await pidsOf(first)).sort(), [...a.pids].sort());
});
