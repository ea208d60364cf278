// Issue 13: the app's own shutdown runs on every graceful stop of a worker (stop, reload,
// scale-down, restart, memory limit): its listeners for the kill signal (SIGTERM, or --kill-signal)
// and its onShutdown handlers (clusterd/worker). An app that exits by itself is a clean exit; an
// app that does not listen is drained and exited by clusterd, as before. A long --grace with exit
// code 0 shows that a stop did not wait for it.
import test from 'ava';
import { ExitCode } from '../../src/exit-codes.js';
import { fixture, get, isRunning, killOnTeardown, startCluster, waitFor, type Cluster, type OutputLine } from '../helpers/cluster.js';
import { control } from '../helpers/control.js';

const APP = fixture('shutdown-app.js');

/** The app's stdout lines that start with `prefix`. */
const said = (cluster: Cluster, prefix: string): OutputLine[] => cluster.lines.filter((line) => line.stream === 'stdout' && line.message.startsWith(prefix));

/** Master events that would mean a worker's stop went wrong or was taken for a crash. */
const troubles = (cluster: Cluster): OutputLine[] =>
  cluster.lines.filter((line) => ['grace-expired', 'stop-failed', 'worker-exit', 'boot-failed', 'fatal'].includes(line.event ?? ''));

/** Waits until `pid` has exited (polling: it is not our child). */
const gone = (pid: number) => waitFor(() => !isRunning(pid), { what: `pid ${pid} to exit` });

test('stop: every worker\'s SIGTERM listener runs, with the arguments of a real signal, and its process.exit(0) is a clean exit', async (t) => {
  const cluster = await startCluster(APP, { instances: 2, flags: ['--grace', '30s'], env: { ON_SIGNAL: 'exit' } });
  killOnTeardown(t, cluster.process);
  t.is(await cluster.stop('SIGTERM'), ExitCode.OK);
  t.deepEqual(said(cluster, 'signal').map((line) => line.message).sort(), [
    `signal SIGTERM ${cluster.pids[0]} worker 1 args SIGTERM,15`,
    `signal SIGTERM ${cluster.pids[1]} worker 2 args SIGTERM,15`,
  ]);
  t.deepEqual(troubles(cluster), []);
});

/** The worker's line saying that the app's exit cut off what its drain had open. */
const cutLines = (cluster: Cluster): OutputLine[] => cluster.lines.filter((line) => line.stream === 'stderr' && line.message.startsWith('clusterd: the app exited during its drain'));

test('process.exit(0) in the SIGTERM listener with a request in flight: the request is cut off, the stop is clean, and the worker says what its exit cut', async (t) => {
  const cluster = await startCluster(APP, { instances: 1, flags: ['--grace', '30s'], env: { ON_SIGNAL: 'exit' } });
  killOnTeardown(t, cluster.process);
  const slow = get(cluster.port, '/slow').then(
    (response) => `answered ${response.status}`,
    (error: NodeJS.ErrnoException) => error.code ?? error.message,
  );
  await waitFor(() => said(cluster, 'slow request started').length === 1, { what: 'the request to be in flight' });
  t.is(await cluster.stop('SIGTERM'), ExitCode.OK);
  t.regex(await slow, /^(ECONNRESET|socket hang up)$/);
  t.deepEqual(cutLines(cluster).map((line) => [line.worker, line.message]), [
    [1, "clusterd: the app exited during its drain with 1 HTTP request in flight, and cut it off (exit in server.close()'s callback to let the drain finish it)"],
  ]);
  t.deepEqual(troubles(cluster), []);
});

test('server.close(() => process.exit(0)) in the SIGTERM listener: the request in flight is answered, and the worker has nothing to say', async (t) => {
  const cluster = await startCluster(APP, { instances: 1, flags: ['--grace', '30s'], env: { ON_SIGNAL: 'close-exit', SLOW_MS: '500' } });
  killOnTeardown(t, cluster.process);
  const slow = get(cluster.port, '/slow');
  await waitFor(() => said(cluster, 'slow request started').length === 1, { what: 'the request to be in flight' });
  t.is(await cluster.stop('SIGTERM'), ExitCode.OK);
  t.is((await slow).status, 200);
  t.deepEqual(cutLines(cluster), []);
  t.deepEqual(troubles(cluster), []);
});

test('--kill-signal SIGINT: the app\'s SIGINT listener runs, closes its server (the callback comes, with no error) and the process ends by itself', async (t) => {
  const cluster = await startCluster(APP, { instances: 2, flags: ['--grace', '30s', '--kill-signal', 'SIGINT'], env: { ON_SIGNAL: 'close', KILL_SIGNAL: 'SIGINT' } });
  killOnTeardown(t, cluster.process);
  t.is(await cluster.stop('SIGTERM'), ExitCode.OK);
  t.is(said(cluster, 'signal SIGINT').length, 2);
  t.deepEqual(said(cluster, 'server closed').map((line) => line.message).sort(), cluster.pids.map((pid) => `server closed ${pid} error none`).sort());
  t.deepEqual(troubles(cluster), []);
});

test('--kill-signal SIGINT: an app that listens only for SIGTERM hears nothing, is drained and exited as before, and the log says so', async (t) => {
  const cluster = await startCluster(APP, { instances: 1, flags: ['--grace', '30s', '--kill-signal', 'SIGINT'], env: { ON_SIGNAL: 'log' } });
  killOnTeardown(t, cluster.process);
  t.is(await cluster.stop('SIGTERM'), ExitCode.OK);
  t.deepEqual(said(cluster, 'signal'), []);
  t.deepEqual(troubles(cluster), []);
  const unheard = cluster.lines.filter((line) => line.event === 'kill-signal-unheard');
  t.is(unheard.length, 1);
  t.regex(unheard[0]!.message, /^worker 1's app listens for SIGTERM, not for the kill signal SIGINT: .* start with --kill-signal SIGTERM to run them$/);
});

test('an app written for PM2 (it listens for SIGINT) under the default SIGTERM: drained as before, and one line for the cluster names --kill-signal SIGINT', async (t) => {
  const cluster = await startCluster(APP, { instances: 2, flags: ['--grace', '30s'], env: { ON_SIGNAL: 'log', KILL_SIGNAL: 'SIGINT' } });
  killOnTeardown(t, cluster.process);
  t.is(await cluster.stop('SIGTERM'), ExitCode.OK);
  t.deepEqual(said(cluster, 'signal'), []);
  t.deepEqual(troubles(cluster), []);
  const unheard = cluster.lines.filter((line) => line.event === 'kill-signal-unheard');
  t.is(unheard.length, 1, 'once for the cluster, not once per worker');
  t.regex(unheard[0]!.message, /listens for SIGINT, not for the kill signal SIGTERM: .*\(PM2 sends SIGINT\); start with --kill-signal SIGINT/);
});

test('a listener with asynchronous cleanup: clusterd does not exit the worker once drained; the app ends it when its cleanup is done', async (t) => {
  const cluster = await startCluster(APP, { instances: 2, flags: ['--grace', '30s'], env: { ON_SIGNAL: 'async' } });
  killOnTeardown(t, cluster.process);
  t.is(await cluster.stop('SIGTERM'), ExitCode.OK);
  t.deepEqual(said(cluster, 'async cleanup done').map((line) => line.pid).sort(), [...cluster.pids].sort());
  t.deepEqual(troubles(cluster), []);
});

test('no listener: the app (which holds a timer of its own) is drained and exited by clusterd, not killed by a signal', async (t) => {
  const cluster = await startCluster(APP, { instances: 2, flags: ['--grace', '30s'], env: { ON_SIGNAL: 'none' } });
  killOnTeardown(t, cluster.process);
  t.is(await cluster.stop('SIGTERM'), ExitCode.OK);
  t.deepEqual(troubles(cluster), []);
  t.false(cluster.lines.some((line) => line.event === 'kill-signal-unheard'));
});

test('signal-exit\'s listener (execa, write-file-atomic...) is not the app\'s: no SIGTERM is emitted, an in-flight request completes and clusterd exits the worker', async (t) => {
  const cluster = await startCluster(fixture('signal-exit-app.js'), { instances: 1, flags: ['--grace', '30s'] });
  killOnTeardown(t, cluster.process);
  const slow = get(cluster.port, '/slow');
  await cluster.waitForLine((line) => line.stream === 'stdout' && line.message === 'slow request started');
  t.is(await cluster.stop('SIGTERM'), ExitCode.OK);
  const response = await slow;
  t.is(response.status, 200);
  t.is(response.body, 'slow\n');
  // signal-exit saw an ordinary exit, not the signal it would have re-raised.
  t.deepEqual(said(cluster, 'onExit').map((line) => line.message), [`onExit ${cluster.pids[0]} code 0 signal null`]);
  t.deepEqual(troubles(cluster), []);
});

test('a listener that does not end the process: the worker is killed at --grace, and the log says the app had not exited', async (t) => {
  const cluster = await startCluster(APP, { instances: 1, flags: ['--grace', '1s'], env: { ON_SIGNAL: 'log' } });
  killOnTeardown(t, cluster.process);
  t.is(await cluster.stop('SIGTERM'), ExitCode.GRACE_EXPIRED);
  t.is(said(cluster, 'signal SIGTERM').length, 1);
  const expired = cluster.lines.filter((line) => line.event === 'grace-expired');
  t.is(expired.length, 1);
  t.is(expired[0]!.message, `worker 1 (pid ${cluster.pids[0]}): --grace 1s over: killed (SIGKILL): nothing was open, but the app, which listens for SIGTERM, had not exited`);
  t.is(expired[0]!.appExits, true);
});

test('onShutdown: the handler runs on stop and is awaited; the worker then exits 0', async (t) => {
  const cluster = await startCluster(APP, { instances: 2, flags: ['--grace', '30s'], env: { ON_SIGNAL: 'none', ON_SHUTDOWN: 'ok' } });
  killOnTeardown(t, cluster.process);
  t.is(await cluster.stop('SIGTERM'), ExitCode.OK);
  for (const [index, pid] of cluster.pids.entries()) {
    const own = cluster.lines.filter((line) => line.stream === 'stdout' && line.pid === pid).map((line) => line.message);
    t.deepEqual(own, [`onShutdown started ${pid} worker ${index + 1}`, `onShutdown done ${pid} worker ${index + 1}`]);
  }
  t.deepEqual(troubles(cluster), []);
});

test('onShutdown and a SIGTERM listener: the listener runs first, then the handler starts, in the same turn of the loop', async (t) => {
  const cluster = await startCluster(APP, { instances: 1, flags: ['--grace', '30s'], env: { ON_SIGNAL: 'close', ON_SHUTDOWN: 'ok' } });
  killOnTeardown(t, cluster.process);
  t.is(await cluster.stop('SIGTERM'), ExitCode.OK);
  const pid = cluster.pids[0]!;
  t.deepEqual(
    cluster.lines.filter((line) => line.stream === 'stdout').map((line) => line.message.split(' ').slice(0, 2).join(' ')),
    ['signal SIGTERM', 'onShutdown started', 'server closed', 'onShutdown done'],
    `pid ${pid}`,
  );
  t.deepEqual(troubles(cluster), []);
});

test('an onShutdown handler that fails: the worker exits 1, logged with the error, and is not restarted', async (t) => {
  const cluster = await startCluster(APP, { instances: 1, flags: ['--grace', '30s'], env: { ON_SIGNAL: 'none', ON_SHUTDOWN: 'fail' } });
  killOnTeardown(t, cluster.process);
  t.is(await cluster.stop('SIGTERM'), ExitCode.OK);
  const failed = cluster.lines.filter((line) => line.event === 'stop-failed');
  t.is(failed.length, 1);
  t.is(failed[0]!.message, `worker 1 (pid ${cluster.pids[0]}) exited with code 1 while stopping: Error: cleanup failed in ${cluster.pids[0]}`);
  t.is(failed[0]!.code, 1);
});

test('reload: each old worker hears SIGTERM and exits by itself; the reload counts both replaced', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(APP, { instances: 2, flags: ['--name', 'shutdown-reload', '--grace', '30s'], env: { ...ctl.env, ON_SIGNAL: 'exit' } });
  killOnTeardown(t, cluster.process);
  const result = await ctl.run(['reload', 'shutdown-reload', '--json']);
  t.is(result.exitCode, 0, String(result.stderr));
  const steps = String(result.stdout).trim().split('\n').map((line) => JSON.parse(line) as { id?: number; phase?: string });
  t.deepEqual(steps.filter((step) => step.phase === 'replaced').map((step) => step.id).sort(), [1, 2], String(result.stdout));
  t.deepEqual(said(cluster, 'signal').map((line) => line.pid).sort(), [...cluster.pids].sort());
  for (const pid of cluster.pids) await gone(pid);
  const after = await ctl.workers('shutdown-reload');
  t.is(after.length, 2);
  t.false(after.some((worker) => cluster.pids.includes(worker.pid)));
  t.deepEqual(troubles(cluster), []);
  t.is(await cluster.stop('SIGTERM'), ExitCode.OK);
});

test('scale down: the worker that leaves hears SIGTERM, exits by itself, and is not restarted', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(APP, { instances: 2, flags: ['--name', 'shutdown-scale', '--grace', '30s'], env: { ...ctl.env, ON_SIGNAL: 'exit' } });
  killOnTeardown(t, cluster.process);
  const result = await ctl.run(['scale', 'shutdown-scale', '1']);
  t.is(result.exitCode, 0, String(result.stderr));
  await gone(cluster.pids[1]!);
  t.deepEqual(said(cluster, 'signal').map((line) => line.pid), [cluster.pids[1]]);
  t.deepEqual((await ctl.workers('shutdown-scale')).map((worker) => worker.pid), [cluster.pids[0]]);
  t.deepEqual(troubles(cluster), []);
  t.is(await cluster.stop('SIGTERM'), ExitCode.OK);
});

test('restart of one worker: the old process hears SIGTERM and its onShutdown handler runs', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(APP, { instances: 2, flags: ['--name', 'shutdown-restart', '--grace', '30s'], env: { ...ctl.env, ON_SIGNAL: 'log', ON_SHUTDOWN: 'ok' } });
  killOnTeardown(t, cluster.process);
  const result = await ctl.run(['restart', 'shutdown-restart', '1']);
  t.is(result.exitCode, 0, String(result.stderr));
  const old = cluster.pids[0]!;
  await gone(old);
  t.deepEqual(said(cluster, 'signal').map((line) => line.pid), [old]);
  t.deepEqual(said(cluster, 'onShutdown done').map((line) => line.pid), [old]);
  t.deepEqual(troubles(cluster), []);
  t.is(await cluster.stop('SIGTERM'), ExitCode.OK);
});

test('memory limit: the worker replaced for its RSS hears SIGTERM and exits by itself', async (t) => {
  const cluster = await startCluster(APP, {
    instances: 1,
    flags: ['--max-memory', '150M', '--stats-interval', '100ms', '--grace', '30s'],
    env: { ON_SIGNAL: 'exit', GROW_MB: '200' },
  });
  killOnTeardown(t, cluster.process);
  t.is((await get(cluster.port, '/grow')).status, 200);
  await cluster.waitForLine((line) => line.event === 'memory-restarted', 30_000);
  await gone(cluster.pids[0]!);
  t.deepEqual(said(cluster, 'signal').map((line) => line.pid), [cluster.pids[0]]);
  t.deepEqual(troubles(cluster), []);
  t.is(await cluster.stop('SIGTERM'), ExitCode.OK);
});
