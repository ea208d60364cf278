// `clusterd stop`, `restart` and `reload` on real clusters whose workers are killed at --grace rather
// than drained: the CLI names each one on stderr with what it destroyed (the master's own line) and
// exits 5, as the master does on such a stop; said only in the master's log, a deploy script and
// every `start -d` user took a stop or reload that cut requests off for a clean one (exit 0).
import test from 'ava';
import { ExitCode } from '../../src/exit-codes.js';
import { fixture, get, killOnTeardown, startCluster, waitFor, type Cluster } from '../helpers/cluster.js';
import { control } from '../helpers/control.js';

/** The pids of the workers each /hang request so far started in (the fixtures log it). */
function hangs(cluster: Cluster): number[] {
  return cluster.lines.flatMap((line) => {
    const match = /^hang request started in (\d+)$/.exec(line.message);
    return match ? [Number(match[1])] : [];
  });
}

/** Sends /hang requests, one at a time, until each of `pids` has at least one in flight. */
async function hangOn(cluster: Cluster, pids: number[]): Promise<void> {
  for (let sent = 1; !pids.every((pid) => hangs(cluster).includes(pid)); sent++) {
    if (sent > 16) throw new Error(`16 requests and none reached some of ${pids.join(', ')}`);
    // Cut off by the kill, as the test means: its error is the point, not a failure.
    get(cluster.port, '/hang', { timeoutMs: 60_000 }).catch(() => {});
    await waitFor(() => hangs(cluster).length >= sent, { what: `hang request ${sent} in flight` });
  }
}

const inFlight = (count: number): string => `destroying ${count} HTTP request${count === 1 ? '' : 's'} in flight`;

test('stop of a cluster whose app does not exit on SIGTERM: a stderr line per worker killed at --grace, exit 5 as the master', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('ignores-sigterm.js'), { flags: ['--grace', '1s', '--name', 'deaf'], env: ctl.env });
  killOnTeardown(t, cluster.process);
  const result = await ctl.run(['stop', 'deaf']);
  t.is(result.exitCode, ExitCode.GRACE_EXPIRED, String(result.stderr));
  t.is(result.stdout, `stopped cluster deaf (master pid ${cluster.masterPid})`);
  t.deepEqual(
    String(result.stderr).split('\n').sort(),
    cluster.pids.map((pid, index) => `clusterd: worker ${index + 1} (pid ${pid}): --grace 1s over: killed (SIGKILL): nothing was open, but the app, which listens for SIGTERM, had not exited`),
  );
  t.is(await cluster.exited, ExitCode.GRACE_EXPIRED);
});

test('stop of a --grace 0 cluster: each worker killed without draining, named, exit 5', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('slow-routes.js'), { flags: ['--grace', '0', '--name', 'now'], env: ctl.env });
  killOnTeardown(t, cluster.process);
  const result = await ctl.run(['stop', 'now']);
  t.is(result.exitCode, ExitCode.GRACE_EXPIRED, String(result.stderr));
  t.deepEqual(String(result.stderr).split('\n').sort(), cluster.pids.map((pid, index) => `clusterd: worker ${index + 1} (pid ${pid}): --grace 0ms over: killed (SIGKILL) without draining`));
  t.is(await cluster.exited, ExitCode.GRACE_EXPIRED);
});

test('stop of a cluster that drains in time: nothing on stderr, exit 0', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('slow-routes.js'), { flags: ['--grace', '10s', '--name', 'calm'], env: ctl.env });
  killOnTeardown(t, cluster.process);
  const result = await ctl.run(['stop', 'calm']);
  t.is(result.exitCode, 0, String(result.stderr));
  t.is(result.stderr, '');
  t.is(await cluster.exited, 0);
});

test('restart of a worker killed at --grace with requests in flight: the line names them on stderr, exit 0 (done); the new worker serves', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('slow-routes.js'), { flags: ['--grace', '1s', '--name', 'busy'], env: ctl.env });
  killOnTeardown(t, cluster.process);
  const old = cluster.pids[0]!;
  await hangOn(cluster, [old]);
  const cut = hangs(cluster).filter((pid) => pid === old).length;

  const result = await ctl.run(['restart', 'busy', '1']);
  t.is(result.exitCode, 0, String(result.stderr));
  t.is(result.stderr, `clusterd: worker 1 (pid ${old}): --grace 1s over: killed (SIGKILL), ${inFlight(cut)}`);
  t.regex(String(result.stdout).split('\n').at(-1)!, /^worker 1 restarted: now pid \d+$/);
  const [worker1] = await ctl.workers('busy');
  t.not(worker1!.pid, old);
  t.is(worker1!.state, 'ready');
  cluster.process.kill('SIGINT');
  await cluster.exited;
});

test('reload: clean, exit 0 and every step `killed: null`; with requests past --grace, the replaced step names the old worker killed, on stderr too, exit 0', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('slow-routes.js'), { flags: ['--grace', '1s', '--name', 'deploy'], env: ctl.env });
  killOnTeardown(t, cluster.process);
  const clean = await ctl.run(['reload', 'deploy', '--json']);
  t.is(clean.exitCode, 0, String(clean.stderr));
  t.is(clean.stderr, '');
  t.true(String(clean.stdout).split('\n').every((line) => (JSON.parse(line) as { killed: unknown }).killed === null));

  const pids = (await ctl.workers('deploy')).map((worker) => worker.pid);
  await hangOn(cluster, pids);
  const result = await ctl.run(['reload', 'deploy', '--json']);
  t.is(result.exitCode, 0, String(result.stderr));
  const steps = String(result.stdout).split('\n').map((line) => JSON.parse(line) as { id: number; phase: string; killed: { id: number; pid: number; message: string } | null });
  const expected = pids.map((pid, index) => ({ id: index + 1, pid, message: `worker ${index + 1} (pid ${pid}): --grace 1s over: killed (SIGKILL), ${inFlight(hangs(cluster).filter((hung) => hung === pid).length)}` }));
  t.deepEqual(
    steps.filter((step) => step.killed !== null).map((step) => [step.phase, step.killed]),
    expected.map((killed) => ['replaced', killed]),
  );
  t.deepEqual(String(result.stderr).split('\n'), expected.map((killed) => `clusterd: ${killed.message}`));
  t.is(steps.at(-1)!.phase, 'done');
  cluster.process.kill('SIGINT');
  await cluster.exited;
});

test('scale down whose workers taken away are still busy at --grace: each named on stderr as the master logs it, exit 0 (done); --json carries them in `killed`', async (t) => {
  // It said `shrink: 2 workers, all ready` alone: the requests cut off were in the master's log only.
  const ctl = control(t);
  const cluster = await startCluster(fixture('slow-routes.js'), { instances: 3, flags: ['--grace', '1s', '--name', 'shrink'], env: ctl.env });
  killOnTeardown(t, cluster.process);
  const [, second, third] = cluster.pids as [number, number, number];
  await hangOn(cluster, [second, third]);
  const killedLine = (id: number, pid: number): string => `worker ${id} (pid ${pid}): --grace 1s over: killed (SIGKILL), ${inFlight(hangs(cluster).filter((hung) => hung === pid).length)}`;
  // The notice of what it waits for may come before the answer, as on any scale that drains past a second.
  const ownLines = (stderr: unknown): string[] => String(stderr).split('\n').filter((line) => line !== '' && !line.startsWith('clusterd: waiting for'));

  const text = await ctl.run(['scale', 'shrink', '2']);
  t.is(text.exitCode, 0, String(text.stderr));
  t.is(text.stdout, 'shrink: 2 workers, all ready');
  t.deepEqual(ownLines(text.stderr), [`clusterd: ${killedLine(3, third)}`]);
  t.true(cluster.lines.some((line) => line.message === killedLine(3, third)), 'the master logged the same line');

  const json = await ctl.run(['scale', 'shrink', '1', '--json']);
  t.is(json.exitCode, 0, String(json.stderr));
  t.deepEqual(JSON.parse(String(json.stdout)), { name: 'shrink', workers: 1, ready: 1, killed: [{ id: 2, pid: second, message: killedLine(2, second) }] });
  t.deepEqual(ownLines(json.stderr), [`clusterd: ${killedLine(2, second)}`]);

  // One that drains in time names none.
  const clean = await ctl.run(['scale', 'shrink', '+1', '--json']);
  t.is(clean.exitCode, 0, String(clean.stderr));
  t.like(JSON.parse(String(clean.stdout)), { workers: 2, killed: [] });
  t.is(clean.stderr, '');
  cluster.process.kill('SIGINT');
  await cluster.exited;
});
