// A worker id's processes in the dashboard: during a reload the successor starting, then the old
// worker draining its open connections (up to --grace), each listed on the id's card with its pid,
// state and connections, so that the cards add up to the header's connection total; and an id
// scaled away and back, a new worker whose figures start from nothing.
import test from 'ava';
import http from 'node:http';
import { rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixture, startCluster, waitFor, type Cluster } from '../helpers/cluster.js';
import { browserTest, dashboardUrl, launch } from '../helpers/browser.js';
import { control } from '../helpers/control.js';
import type { FeedSnapshot } from '../../src/dashboard/feed.js';

async function status(url: string): Promise<FeedSnapshot> {
  return (await (await fetch(new URL('api/status', url))).json()) as FeedSnapshot;
}

/** One worker, holding a request that never ends; reloaded with its successor held `starting` until `release()`. */
async function reloadHeld(t: { teardown(fn: () => void): void }): Promise<{ cluster: Cluster; url: string; oldPid: number; release(): void }> {
  const folder = mkdtempSync(join(tmpdir(), 'clusterd-hold-'));
  const hold = join(folder, 'hold');
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  const cluster = await startCluster(fixture('holds-boot-while-file.js'), { instances: 1, flags: ['--dashboard', '127.0.0.1:0', '--stats-interval', '250ms', '--grace', '60s', '--listen-timeout', '60s'], env: { HOLD_FILE: hold } });
  t.teardown(() => void cluster.stop('SIGKILL'));
  const url = dashboardUrl(cluster);
  const [oldPid] = cluster.pids as [number];
  const hanging = http.get({ host: '127.0.0.1', port: cluster.port, path: '/hang', agent: false });
  hanging.on('error', () => {});
  t.teardown(() => hanging.destroy());
  await cluster.waitForLine((line) => line.message === `hang request started in ${oldPid}`);
  await waitFor(async () => (await status(url)).workers[0]?.latest?.connections === 1, { what: 'a sample counting its open connection' });
  writeFileSync(hold, '');
  process.kill(cluster.masterPid, 'SIGHUP');
  return { cluster, url, oldPid, release: () => rmSync(hold, { force: true }) };
}

test('during a reload the id\'s card lists its successor starting, then the old worker draining with its open connection', async (t) => {
  const { cluster, url, oldPid, release } = await reloadHeld(t);
  const starting = await waitFor(async () => {
    const [worker] = (await status(url)).workers;
    return worker?.others.length === 1 && worker.others[0]!.state === 'starting' ? worker : null;
  }, { timeoutMs: 20_000, what: 'the successor listed, starting' });
  t.is(starting.pid, oldPid, 'the card is the serving worker\'s');
  t.not(starting.others[0]!.pid, oldPid);
  const successor = starting.others[0]!.pid;

  release();
  const draining = await waitFor(async () => {
    const snapshot = await status(url);
    const [worker] = snapshot.workers;
    return worker?.pid === successor && worker.others.length === 1 ? snapshot : null;
  }, { timeoutMs: 20_000, what: 'the successor serving, the old worker listed' });
  t.is(draining.workers.length, 1, 'one card for the id');
  t.deepEqual(draining.workers[0]!.others, [{ pid: oldPid, state: 'stopping', connections: 1 }]);
  // The header's total is the cards' and their draining processes'.
  t.is(draining.totals.connections, (draining.workers[0]!.latest?.connections ?? 0) + 1);
  await cluster.stop('SIGKILL');
});

browserTest('the page shows the old worker draining on its id\'s card during a reload, and its successor while it starts', async (t) => {
  const { url, oldPid, release } = await reloadHeld(t);
  const browser = await launch(t);
  const page = await browser.newPage();
  await page.goto(url);
  await page.locator('[data-worker-id="1"] .others', { hasText: /^pid \d+ starting: its successor$/ }).waitFor({ timeout: 20_000 });
  t.regex(await page.textContent('[data-worker-id="1"] .state') ?? '', new RegExp(`^pid ${oldPid} · ready`));
  release();
  await page.locator('[data-worker-id="1"] .others', { hasText: `pid ${oldPid} draining: 1 connection open` }).waitFor({ timeout: 20_000 });
  t.is(await page.locator('[data-worker-id]').count(), 1);
});

test('an id scaled away and back is a new worker: /api/status has none of the old one\'s buckets', async (t) => {
  const cluster = await startCluster(fixture('hello.js'), { instances: 2, flags: ['--dashboard', '127.0.0.1:0', '--stats-interval', '250ms'] });
  t.teardown(() => void cluster.stop());
  const url = dashboardUrl(cluster);
  // Two buckets at least: the first is older than anything the old worker's last sample could share a bucket with.
  const old = await waitFor(async () => {
    const buckets = (await status(url)).workers.find((worker) => worker.id === 2)?.buckets ?? [];
    return buckets.length >= 2 ? buckets : null;
  }, { timeoutMs: 15_000, what: 'two buckets of worker 2' });
  process.kill(cluster.masterPid, 'SIGTTOU');
  await waitFor(async () => (await status(url)).workers.every((worker) => worker.id === 1), { timeoutMs: 20_000, what: 'worker 2 gone' });
  process.kill(cluster.masterPid, 'SIGTTIN');
  const back = await waitFor(async () => {
    const worker = (await status(url)).workers.find((candidate) => candidate.id === 2);
    return worker?.latest ? worker : null;
  }, { timeoutMs: 20_000, what: 'worker 2 back, with a sample' });
  t.true(back.buckets.length > 0);
  t.true(back.buckets.every((bucket) => bucket.t > old[0]!.t), `old buckets from ${old[0]!.t}; now ${back.buckets.map((bucket) => bucket.t).join(', ')}`);
});

test('a restart under way when its id is scaled away is a marker (failed): it happened, unlike a restart of an id that does not exist', async (t) => {
  const ctl = control(t);
  const folder = mkdtempSync(join(tmpdir(), 'clusterd-hold-'));
  const hold = join(folder, 'hold');
  t.teardown(() => rmSync(folder, { recursive: true, force: true }));
  const cluster = await startCluster(fixture('holds-boot-while-file.js'), { instances: 2, flags: ['--name', 'scaledaway', '--dashboard', '127.0.0.1:0', '--listen-timeout', '60s'], env: { ...ctl.env, HOLD_FILE: hold } });
  t.teardown(() => void cluster.stop('SIGKILL'));
  const url = dashboardUrl(cluster);
  writeFileSync(hold, '');
  const restart = ctl.run(['restart', 'scaledaway', '2']);
  await waitFor(async () => (await ctl.workers('scaledaway')).some((worker) => worker.id === 2 && worker.state === 'starting'), { what: 'worker 2\'s successor starting' });
  t.is((await ctl.run(['scale', 'scaledaway', '1'])).exitCode, 0);
  const restarted = await restart;
  t.regex(String(restarted.stderr), /worker 2 was scaled away before it was replaced/);
  t.is((await ctl.run(['restart', 'scaledaway', '9'])).exitCode, 7);
  const marker = await waitFor(async () => (await status(url)).markers.find((each) => each.kind === 'restart' && each.worker === 2 && each.failed), { what: 'the failed restart\'s marker' });
  t.regex(marker.text, /scaled away/);
  t.false((await status(url)).markers.some((each) => each.worker === 9), 'no marker for worker 9, which does not exist');
});
