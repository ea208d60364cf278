// `status`'s "loop blocked ... in X" line, the last watchdog report of a worker id: it outlives the
// worker it was of (replaced for it), but was kept for good, through 4 restarts and a reload to edited
// code. A reload (new code) clears it; a restart (the same code) does not.
import test from 'ava';
import http from 'node:http';
import { fixture, startCluster, waitFor } from '../helpers/cluster.js';
import { control } from '../helpers/control.js';

test('the last blocked report of a worker id stays through a restart and goes with a reload', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('spins-on-request.js'), { instances: 1, flags: ['--name', 'lastblocked', '--watchdog', '1s'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  const request = http.get({ host: '127.0.0.1', port: cluster.port, path: '/spin', agent: false });
  request.on('error', () => {});
  t.teardown(() => request.destroy());
  await cluster.waitForLine((line) => line.event === 'blocked', 10_000);
  const lastBlocked = async () => (JSON.parse(String((await ctl.run(['status', 'lastblocked', '--json'])).stdout)) as { workers: Array<{ id: number; state: string; generation: number; lastBlocked: unknown }> }).workers;
  const replaced = await waitFor(async () => {
    const workers = await lastBlocked();
    return workers.length === 1 && workers[0]!.state === 'ready' && workers[0]!.lastBlocked ? workers[0]! : null;
  }, { what: 'worker 1 replaced, its report kept', timeoutMs: 15_000 });
  t.is(replaced.generation, 1);

  const restart = await ctl.run(['restart', 'lastblocked', '1']);
  t.is(restart.exitCode, 0, String(restart.stderr));
  t.truthy((await lastBlocked())[0]!.lastBlocked, 'a restart runs the same code');
  t.regex(String((await ctl.run(['status', 'lastblocked'])).stdout), /^worker 1: loop blocked \d+ ms at .*, in spinForever /m);

  const reload = await ctl.run(['reload', 'lastblocked']);
  t.is(reload.exitCode, 0, String(reload.stderr));
  const [after] = await lastBlocked();
  t.is(after!.generation, 2);
  t.is(after!.lastBlocked, null);
  t.notRegex(String((await ctl.run(['status', 'lastblocked'])).stdout), /loop blocked/);
});
