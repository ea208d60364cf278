// clusterd scale: what it prints while it waits.
import test from 'ava';
import { CLI, fixture, startCluster, waitFor } from '../helpers/cluster.js';
import { control } from '../helpers/control.js';
import { execa } from 'execa';
import { startControlServer } from '../../src/control/server.js';
import { tempDir } from '../control/helpers/dirs.js';
import { FakeOperations } from '../control/helpers/fake-operations.js';
import { FakeSource, twoWorkers } from '../control/helpers/fake-source.js';

test('scale down that waits for a worker that ignores SIGTERM says on stderr which one it waits for; --json keeps stdout JSON', async (t) => {
  // It waited the whole --grace in silence.
  const ctl = control(t);
  const cluster = await startCluster(fixture('shutdown-app.js'), { instances: 2, flags: ['--name', 'scalewaits', '--grace', '8s'], env: { ...ctl.env, ON_SIGNAL: 'log' } });
  t.teardown(() => cluster.stop('SIGKILL'));
  const scale = await ctl.run(['scale', 'scalewaits', '1', '--json']);
  t.is(scale.exitCode, 0, String(scale.stderr));
  const message = `worker 2 (pid ${cluster.pids[1]!}): --grace 8s over: killed (SIGKILL): nothing was open, but the app, which listens for SIGTERM, had not exited`;
  t.deepEqual(JSON.parse(String(scale.stdout)), { name: 'scalewaits', workers: 1, ready: 1, killed: [{ id: 2, pid: cluster.pids[1], message }] });
  // Then, once it was killed, the master's line for it.
  t.is(String(scale.stderr), `clusterd: waiting for worker 2 to drain (killed once --grace is over)\nclusterd: ${message}`);
});

test('scale says how many of its workers are ready and what the others are, not "all ready" whatever they are', async (t) => {
  // A scale down does not wait for the ids it keeps: with worker 1 not listening it said "2 workers, all ready".
  const ctl = control(t);
  const name = 'scaletruth';
  const cluster = await startCluster(fixture('closes-its-server.js'), { instances: 3, flags: ['--name', name], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  process.kill(cluster.pids[0]!, 'SIGUSR2');
  await waitFor(async () => (await ctl.workers(name)).find((worker) => worker.id === 1)?.state === 'not-listening', { timeoutMs: 10_000, what: 'worker 1 not listening' });
  const json = await ctl.run(['scale', name, '-1', '--json']);
  t.is(json.exitCode, 0, String(json.stderr));
  t.deepEqual(JSON.parse(String(json.stdout)), { name, workers: 2, ready: 1, killed: [] });
  const text = await ctl.run(['scale', name, '+0']);
  t.is(text.exitCode, 0, String(text.stderr));
  t.is(String(text.stdout), `${name}: 2 workers, 1 ready (worker 1 not listening)`);
  process.kill(cluster.pids[0]!, 'SIGUSR2');
  await waitFor(async () => (await ctl.workers(name)).find((worker) => worker.id === 1)?.state === 'ready', { timeoutMs: 10_000, what: 'worker 1 listening again' });
  t.is(String((await ctl.run(['scale', name, '2'])).stdout), `${name}: 2 workers, all ready`);
});

test('a scale done, then a status that fails (the master stopping): the count alone, exit 0, not a failure', async (t) => {
  const dir = tempDir(t);
  const source = new FakeSource(twoWorkers('api'));
  const ops = new FakeOperations(source);
  const scale = ops.scale;
  ops.scale = async (spec) => {
    const count = await scale(spec);
    source.failWith = new Error('the master is stopping');
    return count;
  };
  const server = await startControlServer({ name: 'api', source, operations: ops, dir });
  t.teardown(() => server.close());
  for (const [args, out] of [[['scale', 'api', '+1'], 'api: 3 workers'], [['scale', 'api', '+1', '--json'], '{"name":"api","workers":4,"ready":null,"killed":[]}']] as const) {
    source.failWith = null;
    const result = await execa(process.execPath, [CLI, ...args], { env: { CLUSTERD_RUNTIME_DIR: dir }, reject: false });
    t.is(result.exitCode, 0, result.stderr);
    t.is(result.stdout, out);
  }
});
