// `clusterd loop`'s hooks run in every callback of the worker it measures, and slow a promise-heavy
// app several times over: the blocks they make are the measurement's, and were filed for five minutes
// as sites in clusterd's own code (src/loop/phases.ts, once source-mapped), and counted for good in
// clusterd_worker_blocks_total. A block of the app's after the window is filed as before.
import test from 'ava';
import { fixture, get, startCluster, waitFor } from '../helpers/cluster.js';
import { control } from '../helpers/control.js';
import type { BlockedSite } from '../../src/master/blocked-sites.js';


test('blocks made while `loop` measures a promise-heavy worker are neither sites nor counted; the app\'s own block after is', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('promise-storm-worker-1.js'), { instances: 1, flags: ['--name', 'loopblocks'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  const status = async () => (JSON.parse(String((await ctl.run(['status', 'loopblocks', '--json'])).stdout)) as { workers: Array<{ blocks: number; blockedSites: BlockedSite[] }> }).workers[0]!;

  // Its first chains, before V8 has compiled them, can block on their own, and such a block is the
  // app's: counted (with no site when the probe came after it), as late as a capture's timeout after it.
  // A first window measures past them; only the second window's count is compared.
  t.is((await ctl.run(['loop', 'loopblocks', '1', '--duration', '1500ms', '--json'])).exitCode, 0);
  const before = await status();
  const loop = await ctl.run(['loop', 'loopblocks', '1', '--duration', '3s', '--json']);
  t.is(loop.exitCode, 0, String(loop.stderr));
  const breakdown = JSON.parse(String(loop.stdout)) as { phases: { microtasks: { count: number } } };
  t.true(breakdown.phases.microtasks.count > 500_000, JSON.stringify(breakdown.phases.microtasks));
  const after = await status();
  t.is(after.blocks, before.blocks, JSON.stringify(after.blockedSites));
  t.deepEqual(after.blockedSites, before.blockedSites);

  // A block each time: the first may come before the worker's inspector is up, and count with no site.
  const blocked = await waitFor(async () => {
    await get(cluster.port, '/block');
    const worker = await status();
    return worker.blockedSites.some((site) => site.function === 'spin') ? worker : null;
  }, { what: 'the app\'s own block filed', timeoutMs: 30_000 });
  t.truthy(blocked.blockedSites.find((site) => site.function === 'spin'), JSON.stringify(blocked.blockedSites));
  t.true(blocked.blockedSites.every((site) => !/\/(src|dist)\/(loop|worker|master)\//.test(site.url)), JSON.stringify(blocked.blockedSites));
});
