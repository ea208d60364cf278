// The line that says why a serving worker exited quotes what it wrote just before, never an error it
// logged and handled earlier (exit-report.ts exitOutput, lastErrorLine).
import test, { type ExecutionContext } from 'ava';
import { ExitCode } from '../../src/exit-codes.js';
import { fixture, get, killOnTeardown, startCluster, waitFor, type Cluster } from '../helpers/cluster.js';

const APP = fixture('logs-then-dies.js');

/** Has the worker log a handled error, and waits until the master has read it. */
async function handledError(t: ExecutionContext, cluster: Cluster, pid: number): Promise<void> {
  t.is((await get(cluster.port, '/handled')).status, 404);
  await cluster.waitForLine((line) => line.pid === pid && line.stream === 'stderr' && line.message.includes('(handled, 404)'));
}

test('a worker killed by SIGKILL from outside (the out-of-memory killer) is not blamed on an error the app logged before', async (t) => {
  const cluster = await startCluster(APP, { instances: 1, flags: ['--name', 'exit-cause-sigkill'] });
  killOnTeardown(t, cluster.process);
  const pid = cluster.pids[0]!;
  await handledError(t, cluster, pid);
  process.kill(pid, 'SIGKILL');
  const exit = await cluster.waitForLine((line) => line.event === 'worker-exit');
  t.is(exit.message, `worker 1 (pid ${pid}) was killed by SIGKILL; restarting`);
  t.is(exit.signal, 'SIGKILL');
  t.is(await cluster.stop(), ExitCode.OK);
});

test('process.exit() after a plain fatal line quotes that line, not the error the app logged and handled before', async (t) => {
  const cluster = await startCluster(APP, { instances: 1, flags: ['--name', 'exit-cause-quit'] });
  killOnTeardown(t, cluster.process);
  const pid = cluster.pids[0]!;
  await handledError(t, cluster, pid);
  await t.throwsAsync(get(cluster.port, '/quit'));
  const exit = await cluster.waitForLine((line) => line.event === 'worker-exit');
  t.is(exit.message, `worker 1 (pid ${pid}) exited with code 2: fatal: lost connection to db, giving up; restarting`);
  t.is(exit.code, 2);
  t.is(await cluster.stop(), ExitCode.OK);
});

test('an uncaught exception after a handled error is named by its own error line', async (t) => {
  const cluster = await startCluster(APP, { instances: 1, flags: ['--name', 'exit-cause-throw'] });
  killOnTeardown(t, cluster.process);
  const pid = cluster.pids[0]!;
  await handledError(t, cluster, pid);
  await get(cluster.port, '/throw');
  const exit = await cluster.waitForLine((line) => line.event === 'worker-exit');
  t.is(exit.message, `worker 1 (pid ${pid}) exited with code 1: TypeError: cannot read the session; restarting`);
  t.is(await cluster.stop(), ExitCode.OK);
});

test("the app's own process.disconnect() is named as such, not as a SIGKILL, and the worker is replaced as after a crash", async (t) => {
  const cluster = await startCluster(APP, { instances: 1, flags: ['--name', 'exit-cause-disconnect'] });
  killOnTeardown(t, cluster.process);
  const pid = cluster.pids[0]!;
  t.is((await get(cluster.port, '/disconnect')).status, 200);
  const exit = await cluster.waitForLine((line) => line.event === 'worker-exit');
  t.is(exit.message, `worker 1 (pid ${pid}) closed its IPC channel (process.disconnect()); restarting`);
  // Replaced: another worker answers on the port.
  await waitFor(async () => {
    const response = await get(cluster.port).catch(() => null);
    return response?.status === 200 && response.body !== String(pid);
  }, { what: 'a new worker answering' });
  t.is(await cluster.stop(), ExitCode.OK);
});

test("a 'disconnecting' message the app sends itself, then exit 1: the exit line gives the code, not a closed IPC channel", async (t) => {
  const cluster = await startCluster(APP, { instances: 1, flags: ['--name', 'exit-cause-forged'] });
  killOnTeardown(t, cluster.process);
  const pid = cluster.pids[0]!;
  t.is((await get(cluster.port, '/forge')).status, 200);
  const exit = await cluster.waitForLine((line) => line.event === 'worker-exit');
  t.is(exit.message, `worker 1 (pid ${pid}) exited with code 1: fatal: config invalid; restarting`);
  t.is(await cluster.stop(), ExitCode.OK);
});
