// Issue 12, part 1: `clusterd profile` on real workers: a CPU profile of a worker while it serves,
// nothing to enable at start; a blocked worker's stack instead of a profile; every bad input one
// line and its exit code, and no half-written file presented as valid.
import test from 'ava';
import { execa } from 'execa';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExitCode } from '../../src/exit-codes.js';
import { CLI, fixture, get, startCluster, waitFor } from '../helpers/cluster.js';
import { control } from '../helpers/control.js';

function scratch(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-profile-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('a profile of a busy worker: a .cpuprofile with its busy function on top, and the top 10 printed', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('busy-on-request.js'), { instances: 1, flags: ['--name', 'prof'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  const out = join(scratch(t), 'busy.cpuprofile');
  // Busy until the profile is over, however long the CLI takes to start on a loaded machine.
  await get(cluster.port, '/busy/60000');
  const result = await ctl.run(['profile', 'prof', '1', '--duration', '1s', '--out', out]);
  await get(cluster.port, '/calm');
  t.is(result.exitCode, 0, String(result.stderr));
  t.regex(String(result.stdout), new RegExp(`^wrote ${out.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} \\(\\d+ samples over 1\\.\\d s of worker 1\\)`));
  // crunch() is where the time goes; its share leads the list.
  const listed = String(result.stdout).split('most self time:\n')[1]!.trim().split('\n');
  t.true(listed.length >= 2 && listed.length <= 10, listed.join('\n'));
  // Once optimized, V8 may inline crunch() into its caller step(): the samples are then step's.
  t.regex(listed[0]!, /^\s*\d+\.\d%\s+(crunch|step)\s+file:\/\/.*busy-on-request\.js:\d+$/);
  const profile = JSON.parse(readFileSync(out, 'utf8')) as { nodes: unknown[]; samples: number[]; startTime: number; endTime: number };
  // Samples, not how many: the sampler gets what CPU a loaded machine leaves it (a CI run at load 12
  // on 2 cores had fewer than the 100 this asked for, of the 1000 a second one has to itself).
  t.true(profile.nodes.length > 0, `${profile.nodes.length} nodes`);
  t.true(profile.samples.length > 0, `${profile.samples.length} samples`);
  t.true(profile.endTime > profile.startTime, `${profile.startTime}..${profile.endTime}`);
});

test('the default file name holds the cluster, the worker and the time, in the current directory', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('busy-on-request.js'), { instances: 1, flags: ['--name', 'profname'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  const dir = scratch(t);
  const result = await ctl.run(['profile', 'profname', '1', '--duration', '200ms'], { cwd: dir });
  t.is(result.exitCode, 0, String(result.stderr));
  const files = readdirSync(dir);
  t.is(files.length, 1);
  t.regex(files[0]!, /^profname-w1-\d{8}T\d{6}\.cpuprofile$/);
  t.true(String(result.stdout).includes(join(dir, files[0]!)));
});

test('a worker whose loop is blocked is not profiled: its stack is printed, exit 11, no file', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('busy-on-request.js'), { instances: 1, flags: ['--name', 'profblocked', '--watchdog', '0'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  const out = join(scratch(t), 'never.cpuprofile');
  await get(cluster.port, '/spin');
  // Blocked means silent for a second here (no watchdog): ask once `stack` says so.
  await waitFor(async () => (JSON.parse(String((await ctl.run(['stack', 'profblocked', '1', '--json'])).stdout)) as { state: string }).state === 'blocked', {
    what: 'worker 1 blocked',
  });
  const result = await ctl.run(['profile', 'profblocked', '1', '--duration', '1s', '--out', out]);
  t.is(result.exitCode, ExitCode.BLOCKED, String(result.stderr));
  t.regex(String(result.stderr), /^worker 1's event loop is blocked \(silent for \d+\.\d s, in spinForever \(file:\/\/.*busy-on-request\.js:\d+:\d+\)\): nothing was measured\. Its stack:\n {4}at spinForever \(file:\/\/.*busy-on-request\.js:\d+:\d+\)/);
  t.false(existsSync(out));
});

test('status, top and /metrics say a worker is blocked while it is, and for how long: its last sample is from before the block', async (t) => {
  // A blocked loop sends no samples, so `status` showed the worker ready with the lag of its last quiet
  // second (0.00) for as long as the block lasted.
  const ctl = control(t);
  const cluster = await startCluster(fixture('busy-on-request.js'), { instances: 1, flags: ['--name', 'statblocked', '--watchdog', '0', '--metrics', '127.0.0.1:0'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  const metrics = (await cluster.waitForLine((line) => line.event === 'ready')).metrics as string;
  const gauge = async (): Promise<number> => Number(/^clusterd_worker_event_loop_blocked_seconds\{worker="1"\} (\S+)$/m.exec(await (await fetch(metrics)).text())?.[1]);
  const statusJson = async () => (JSON.parse(String((await ctl.run(['status', 'statblocked', '--json'])).stdout)) as { workers: { state: string; blockedMs: number }[] }).workers[0]!;
  t.like(await statusJson(), { state: 'ready', blockedMs: 0 });
  t.is(await gauge(), 0);

  await get(cluster.port, '/spin');
  const blocked = await waitFor(async () => ((await statusJson()).blockedMs >= 1000 ? statusJson() : undefined), { what: 'status --json: blocked for a second' });
  t.is(blocked.state, 'ready');
  const table = await ctl.run(['status', 'statblocked']);
  t.is(table.exitCode, 0, String(table.stderr));
  t.regex(String(table.stdout), /^ 1 +\d+ +blocked /m);
  t.regex(String(table.stdout), /^worker 1: its event loop is blocked now, for \d+\.\d s \(`clusterd stack statblocked 1` shows where\)$/m);
  const top = await ctl.run(['top', 'statblocked', '--once']);
  t.regex(String(top.stdout), /^worker 1: its event loop is blocked now, for \d+\.\d s/m);
  t.true((await gauge()) >= 1, 'the gauge counts the silence');
  // Not ready to take connections, as /readyz counts it: it was 1 ready while /readyz said 0 of 1.
  const exposition = await (await fetch(metrics)).text();
  t.regex(exposition, /^clusterd_master_workers_ready 0$/m);
  t.regex(exposition, /^clusterd_master_workers_blocked 1$/m);
});

test('with a long --watchdog, a loop silent for a second is blocked all the same: loop exits 11 rather than measure the quiet after it', async (t) => {
  // Blocked meant silent past --watchdog (5 s by default): `stack` said busy during a 4 s block, and
  // `loop` waited for the block to end, then reported the worker idle.
  const ctl = control(t);
  const cluster = await startCluster(fixture('busy-on-request.js'), { instances: 1, flags: ['--name', 'loopblocked', '--watchdog', '30s'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  await get(cluster.port, '/spin');
  await waitFor(async () => (JSON.parse(String((await ctl.run(['stack', 'loopblocked', '1', '--json'])).stdout)) as { state: string }).state === 'blocked', {
    what: 'worker 1 blocked',
  });
  const result = await ctl.run(['loop', 'loopblocked', '1', '--duration', '1s']);
  t.is(result.exitCode, ExitCode.BLOCKED, String(result.stdout));
  t.regex(String(result.stderr), /^worker 1's event loop is blocked \(silent for \d+\.\d s, in spinForever /);
  // --json: the same on stderr, and an object on stdout that says so, with the stack.
  const json = await ctl.run(['loop', 'loopblocked', '1', '--duration', '1s', '--json']);
  t.is(json.exitCode, ExitCode.BLOCKED, String(json.stderr));
  t.regex(String(json.stderr), /^worker 1's event loop is blocked \(silent for \d+\.\d s, in spinForever /);
  const report = JSON.parse(String(json.stdout)) as { worker: number; blocked: boolean; blockedMs: number; frames: { functionName: string; url: string; line: number }[] };
  t.deepEqual(Object.keys(report), ['worker', 'blocked', 'blockedMs', 'frames']);
  t.like(report, { worker: 1, blocked: true });
  t.true(report.blockedMs >= 1000, String(report.blockedMs));
  t.like(report.frames[0], { functionName: 'spinForever' });
  t.true(report.frames[0]!.url.endsWith('busy-on-request.js'), report.frames[0]!.url);
});

test('a worker that exits during its profile: one line, exit 3, no file', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('busy-on-request.js'), { instances: 1, flags: ['--name', 'profexit'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  const dir = scratch(t);
  const out = join(dir, 'gone.cpuprofile');
  const profiling = ctl.run(['profile', 'profexit', '1', '--duration', '3s', '--out', out]);
  await cluster.waitForLine((line) => line.event === 'profile');
  await get(cluster.port, '/exit');
  const result = await profiling;
  t.is(result.exitCode, ExitCode.BOOT_FAILED, String(result.stderr));
  t.is(String(result.stderr).trim().split('\n').length, 1, String(result.stderr));
  t.regex(String(result.stderr), /^clusterd: worker 1 \(pid \d+\) exited during the profile/);
  t.deepEqual(readdirSync(dir), []);
});

test('bad input: an unknown worker (7, with the ids), a duration out of range (2), a second profile of the same worker (9)', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('busy-on-request.js'), { instances: 2, flags: ['--name', 'profbad'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  const dir = scratch(t);

  const unknown = await ctl.run(['profile', 'profbad', '9', '--duration', '1s'], { cwd: dir });
  t.is(unknown.exitCode, ExitCode.NOT_FOUND);
  t.regex(String(unknown.stderr), /^clusterd: no worker 9 in cluster profbad \(workers: 1, 2\)$/);

  for (const duration of ['10ms', '10m', 'soon']) {
    const bad = await ctl.run(['profile', 'profbad', '1', '--duration', duration], { cwd: dir });
    t.is(bad.exitCode, ExitCode.USAGE, duration);
    t.regex(String(bad.stderr), /^clusterd: Expected `--duration` to be a duration from 100ms to 5m/);
  }

  // Where the profile goes is checked before sampling: no profile is taken (none is announced).
  for (const [out, why] of [
    [join(dir, 'missing', 'x.cpuprofile'), `has no directory ${join(dir, 'missing')}`],
    [dir, 'is a directory'],
    // A file where a directory should be (ENOTDIR): was an internal error.
    [join(fixture('hello.js'), 'x.cpuprofile'), `has no directory ${fixture('hello.js')}`],
  ] as const) {
    const bad = await ctl.run(['profile', 'profbad', '1', '--duration', '1m', '--out', out]);
    t.is(bad.exitCode, ExitCode.USAGE, String(bad.stderr));
    t.is(String(bad.stderr).trim(), `clusterd: --out: ${out} ${why}`);
  }
  t.false(cluster.lines.some((line) => line.event === 'profile'));

  const first = ctl.run(['profile', 'profbad', '2', '--duration', '2s', '--out', join(dir, 'first.cpuprofile')]);
  await cluster.waitForLine((line) => line.event === 'profile' && line.worker === 2);
  const second = await ctl.run(['profile', 'profbad', '2', '--duration', '1s', '--out', join(dir, 'second.cpuprofile')]);
  t.is(second.exitCode, ExitCode.BUSY, String(second.stderr));
  t.is(String(second.stderr).trim(), 'clusterd: refused: worker 2 is being profiled already; try again when it finishes');
  t.is((await first).exitCode, 0);
  // The refused one is not logged as a profile taken.
  t.is(cluster.lines.filter((line) => line.event === 'profile' && line.worker === 2).length, 1);
  t.deepEqual(readdirSync(dir), ['first.cpuprofile']);
});

test('a profile whose asker goes away (Ctrl-C) stops: the next one is not refused for the rest of its window', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('hello.js'), { instances: 1, flags: ['--name', 'profcancel'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  const dir = scratch(t);
  const long = execa(process.execPath, [CLI, 'profile', 'profcancel', '1', '--duration', '5m', '--out', join(dir, 'long.cpuprofile')], { env: ctl.env, reject: false });
  await cluster.waitForLine((line) => line.event === 'profile');
  long.kill('SIGINT');
  await long;
  await cluster.waitForLine((line) => line.event === 'profile-cancelled');
  const next = await ctl.run(['profile', 'profcancel', '1', '--duration', '200ms', '--out', join(dir, 'next.cpuprofile')]);
  t.is(next.exitCode, 0, String(next.stderr));
  t.false(existsSync(join(dir, 'long.cpuprofile')));
});
