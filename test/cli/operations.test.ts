// The built CLI's operations (reload, scale, restart, stop, stack, logs; `npm run build` first)
// against control servers on fake operations in this process: exit codes, output, JSON.
import test from 'ava';
import { execa } from 'execa';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { BootError, ClusterdError } from '../../src/errors.js';
import { ExitCode } from '../../src/exit-codes.js';
import { CLI, waitFor } from '../helpers/cluster.js';
import { tempDir } from '../control/helpers/dirs.js';
import { SPIN_STACK, logEntry } from '../control/helpers/fake-operations.js';
import { serveOps } from '../control/helpers/serve.js';

test.before(() => {
  if (!existsSync(new URL('../../dist/cli/main.js', import.meta.url))) throw new Error('dist/ is missing: run `npm run build` first');
});

function clusterd(dir: string, ...args: string[]) {
  return execa(process.execPath, [CLI, ...args], { env: { CLUSTERD_RUNTIME_DIR: dir }, reject: false });
}

test('reload prints each step and exits 0; --json prints one object per step', async (t) => {
  const dir = tempDir(t);
  const { ops } = await serveOps(t, { dir });
  const text = await clusterd(dir, 'reload');
  t.is(text.exitCode, 0, text.stderr);
  t.is(text.stdout.split('\n').length, 7);
  t.is(text.stdout.split('\n')[0], 'worker 1: starting generation 2 (pid 50001)');
  t.is(text.stdout.split('\n').at(-1), 'reloaded 2 workers: generation 2');
  t.is(text.stderr, '');

  const json = await clusterd(dir, 'reload', 'api', '--parallel', '2', '--json');
  t.is(json.exitCode, 0, json.stderr);
  const steps = json.stdout.split('\n').map((line) => JSON.parse(line) as { phase: string; generation: number; replaced: number });
  t.deepEqual(steps.map((step) => step.phase), ['starting', 'draining', 'replaced', 'starting', 'draining', 'replaced', 'done']);
  t.like(steps.at(-1), { generation: 3, replaced: 2 });
  t.deepEqual(ops.calls, ['reload 1', 'reload 2']);
});

test('reload whose new code fails to boot: one line, the worker\'s output indented, exit 3', async (t) => {
  const dir = tempDir(t);
  const { ops } = await serveOps(t, { dir });
  ops.reload = async (_options, onProgress) => {
    onProgress({ id: 1, phase: 'starting', pid: 50_001, generation: 2, message: 'worker 1: starting generation 2 (pid 50001)' });
    throw new BootError('reload failed after 0 of 2 workers: worker 1\'s replacement exited with code 1 before it was ready: Error: boom', [
      'file:///srv/app.js:1',
      'Error: boom',
    ]);
  };
  const result = await clusterd(dir, 'reload');
  t.is(result.exitCode, ExitCode.BOOT_FAILED);
  t.is(result.stdout, 'worker 1: starting generation 2 (pid 50001)');
  t.deepEqual(result.stderr.split('\n'), [
    'clusterd: reload failed after 0 of 2 workers: worker 1\'s replacement exited with code 1 before it was ready: Error: boom',
    '    file:///srv/app.js:1',
    '    Error: boom',
  ]);
});

test('a failed step that the error repeats is printed once, on stderr; another failed step, and --json, keep theirs', async (t) => {
  const dir = tempDir(t);
  const { ops } = await serveOps(t, { dir });
  const failed = (id: number, message: string) => ({ id, phase: 'failed' as const, pid: 0, generation: 2, message });
  const crash = "worker 2's replacement exited with code 1 before it was ready: Error: boom";
  ops.reload = async (_options, onProgress) => {
    onProgress({ id: 1, phase: 'starting', pid: 50_001, generation: 2, message: 'worker 1: starting generation 2 (pid 50001)' });
    onProgress(failed(1, 'worker 1: its replacement was called off; the old worker serves on'));
    onProgress(failed(2, crash));
    throw new BootError(`reload failed after 0 of 2 workers: ${crash}`, []);
  };
  const boot = await clusterd(dir, 'reload');
  t.is(boot.exitCode, ExitCode.BOOT_FAILED);
  t.deepEqual(boot.stdout.split('\n'), ['worker 1: starting generation 2 (pid 50001)', 'worker 1: its replacement was called off; the old worker serves on']);
  t.is(boot.stderr, `clusterd: reload failed after 0 of 2 workers: ${crash}`);
  const json = await clusterd(dir, 'reload', '--json');
  t.deepEqual(json.stdout.split('\n').map((line) => (JSON.parse(line) as { phase: string }).phase), ['starting', 'failed', 'failed']);

  ops.reload = async (_options, onProgress) => {
    onProgress(failed(1, 'the cluster is stopping'));
    throw new ClusterdError('ERR_CLUSTERD_STOPPING', 'the cluster is stopping');
  };
  const stopping = await clusterd(dir, 'reload');
  t.is(stopping.exitCode, ExitCode.NOT_FOUND);
  t.is(stopping.stdout, '');
  t.is(stopping.stderr, 'clusterd: the cluster is stopping');
});

test('reload while one runs is refused: one line, exit 9; a bad --parallel is a usage error', async (t) => {
  const dir = tempDir(t);
  const { ops } = await serveOps(t, { dir });
  ops.reload = async () => {
    throw new ClusterdError('ERR_CLUSTERD_BUSY', 'refused: a reload is in progress (started 2s ago); try again when it finishes');
  };
  const refused = await clusterd(dir, 'reload');
  t.is(refused.exitCode, ExitCode.BUSY);
  t.is(refused.stderr, 'clusterd: refused: a reload is in progress (started 2s ago); try again when it finishes');
  t.is(refused.stdout, '');

  const bad = await clusterd(dir, 'reload', '--parallel', '0');
  t.is(bad.exitCode, ExitCode.USAGE);
  t.is(bad.stderr, 'clusterd: Expected `--parallel` to be an integer from 1 to 1024, got `0`');
});

test('scale N, +K, -K (a bare -1 is a count, not a flag), with or without NAME', async (t) => {
  const dir = tempDir(t);
  const { ops, source } = await serveOps(t, { dir });
  const cases: [string[], number][] = [
    [['scale', '4'], 4],
    [['scale', '+2'], 6],
    [['scale', '-1'], 5],
    [['scale', 'api', '-2'], 3],
    [['scale', '--', '-1'], 2],
    [['scale', 'api', '+1', '--json'], 3],
  ];
  for (const [args, workers] of cases) {
    const result = await clusterd(dir, ...args);
    t.is(result.exitCode, 0, `${args.join(' ')}: ${result.stderr}`);
    if (args.includes('--json')) t.deepEqual(JSON.parse(result.stdout), { name: 'api', workers, ready: workers, killed: [] });
    else t.is(result.stdout, `api: ${workers} workers, all ready`);
  }
  t.deepEqual(ops.calls, ['scale 4', 'scale +2', 'scale -1', 'scale -2', 'scale -1', 'scale +1']);
  t.is(source.current.workers.length, 3);
});

test('scale 0, below one worker, or nonsense: one line, exit 2, the cluster untouched', async (t) => {
  const dir = tempDir(t);
  const { source } = await serveOps(t, { dir });
  for (const [spec, message] of [
    ['0', 'cannot scale to 0 workers: at least one worker must run'],
    ['-2', 'cannot scale api to 0 workers: at least one worker must run (now 2)'],
    ['lots', 'Expected a worker count N from 1 to 1024, or +K or -K with K at most 1024, got `lots`'],
  ]) {
    const result = await clusterd(dir, 'scale', spec!);
    t.is(result.exitCode, ExitCode.USAGE, spec);
    t.is(result.stderr, `clusterd: ${message}`);
  }
  const none = await clusterd(dir, 'scale');
  t.is(none.exitCode, ExitCode.USAGE);
  t.is(source.current.workers.length, 2);
});

test('a NAME with its count or worker id left out or empty: says which is missing, by its usage name, exit 2; an empty NAME is refused', async (t) => {
  const dir = tempDir(t);
  const { ops } = await serveOps(t, { dir });
  const cases: [string[], string][] = [
    [['scale', 'api'], 'Missing the worker count N|+K|-K after NAME `api`: clusterd scale [NAME] <N|+K|-K>'],
    [['scale', 'api', ''], 'Missing the worker count N|+K|-K after NAME `api`: clusterd scale [NAME] <N|+K|-K>'],
    [['scale'], 'Missing the worker count N|+K|-K: clusterd scale [NAME] <N|+K|-K>'],
    [['restart', 'api'], 'Missing WORKER_ID after NAME `api`: clusterd restart [NAME] <WORKER_ID>'],
    [['restart', 'api', ''], 'Missing WORKER_ID after NAME `api`: clusterd restart [NAME] <WORKER_ID>'],
    [['stack', 'api'], 'Missing WORKER_ID after NAME `api`: clusterd stack [NAME] <WORKER_ID>'],
    [['restart', ''], 'Missing WORKER_ID: clusterd restart [NAME] <WORKER_ID>'],
    [['restart', '', '1'], "Expected NAME, the cluster's name, got an empty argument"],
    [['status', ''], "Expected NAME, the cluster's name, got an empty argument"],
    [['stop', ''], "Expected NAME, the cluster's name, got an empty argument"],
  ];
  for (const [args, message] of cases) {
    const result = await clusterd(dir, ...args);
    t.is(result.exitCode, ExitCode.USAGE, args.join(' '));
    t.is(result.stderr, `clusterd: ${message}`, args.join(' '));
  }
  // A word that names no cluster here is read as the count, as before.
  t.is((await clusterd(dir, 'restart', 'web')).stderr, 'clusterd: Expected WORKER_ID to be an integer from 1 to 1024, got `web`');
  t.deepEqual(ops.calls, []);
});

test('restart: WORKER_ID alone or after NAME; an unknown id names the ids there are, exit 7', async (t) => {
  const dir = tempDir(t);
  const { ops } = await serveOps(t, { dir });
  const one = await clusterd(dir, 'restart', '2');
  t.is(one.exitCode, 0, one.stderr);
  t.is(one.stdout.split('\n').at(-1), 'worker 2 restarted: now pid 50002');

  const unknown = await clusterd(dir, 'restart', 'api', '9');
  t.is(unknown.exitCode, ExitCode.NOT_FOUND);
  t.is(unknown.stderr, 'clusterd: no worker 9 in cluster api (workers: 1, 2)');

  const notAnId = await clusterd(dir, 'restart', 'api', 'x');
  t.is(notAnId.exitCode, ExitCode.USAGE);
  t.is(notAnId.stderr, 'clusterd: Expected WORKER_ID to be an integer from 1 to 1024, got `x`');

  await serveOps(t, { dir, name: 'web' });
  const ambiguous = await clusterd(dir, 'restart', '1');
  t.is(ambiguous.exitCode, ExitCode.USAGE);
  const named = await clusterd(dir, 'restart', 'web', '1');
  t.is(named.exitCode, 0, named.stderr);
  const wrongName = await clusterd(dir, 'restart', 'db', '1');
  t.is(wrongName.exitCode, ExitCode.NOT_FOUND);
  // --name as NAME, before or after the id: yargs dropped it, and the command said to name a cluster.
  for (const args of [['--name', 'api', '2'], ['2', '--name=api'], ['api', '2', '--name', 'api']]) {
    const flagged = await clusterd(dir, 'restart', ...args);
    t.is(flagged.exitCode, 0, `${args.join(' ')}: ${flagged.stderr}`);
  }
  const twice = await clusterd(dir, 'restart', '--name', 'api', '--name', 'web', '2');
  t.is(twice.exitCode, ExitCode.USAGE);
  t.deepEqual(ops.calls, ['restart 2', 'restart 9', 'restart 2', 'restart 2', 'restart 2']);
});

test('stop waits until the master has exited, then exits 0', async (t) => {
  const dir = tempDir(t);
  const { ops, source } = await serveOps(t, { dir });
  // A stand-in for the master: a process that exits when told to stop.
  const master = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e6)'], { stdio: 'ignore' });
  t.teardown(() => master.kill('SIGKILL'));
  source.update({ ...source.current, masterPid: master.pid! });
  ops.onStop = () => void master.kill('SIGTERM');
  const result = await clusterd(dir, 'stop');
  t.is(result.exitCode, 0, result.stderr);
  t.is(result.stdout, `stopped cluster api (master pid ${master.pid})`);
  // Asked once: the Stop answers once the workers are gone, with how it went.
  t.deepEqual(ops.calls, ['stop']);
  t.throws(() => process.kill(master.pid!, 0), { code: 'ESRCH' }, 'the CLI returned only after the master was gone');
});

test('stop of a master that kills its workers and closes its control plane at once (--grace 0): the one Stop, waiting, still hears what it killed, exit 5', async (t) => {
  const dir = tempDir(t);
  const { ops, source, server } = await serveOps(t, { dir });
  const master = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e6)'], { stdio: 'ignore' });
  t.teardown(() => master.kill('SIGKILL'));
  source.update({ ...source.current, masterPid: master.pid! });
  ops.graceMs = 0;
  const message = 'worker 1 (pid 40001): --grace 0ms over: killed (SIGKILL) without draining';
  ops.stopOutcome = Promise.resolve({ exitCode: ExitCode.GRACE_EXPIRED, killed: [{ id: 1, pid: 40_001, message }] });
  // As the master does once its workers are gone: its control plane closes (a call under way may
  // finish), then it exits. A Stop asked after that is refused.
  ops.onStop = () =>
    setImmediate(() => {
      void server.close();
      master.kill('SIGTERM');
    });
  const result = await clusterd(dir, 'stop', 'api');
  t.is(result.exitCode, ExitCode.GRACE_EXPIRED, result.stderr);
  t.is(result.stderr, `clusterd: ${message}`);
  t.is(result.stdout, `stopped cluster api (master pid ${master.pid})`);
  t.deepEqual(ops.calls, ['stop']);
});

test('stop whose master exits without answering: a note that how it went is in its log, exit 0, without waiting out the deadline', async (t) => {
  const dir = tempDir(t);
  const { ops, source } = await serveOps(t, { dir });
  const master = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e6)'], { stdio: 'ignore' });
  t.teardown(() => master.kill('SIGKILL'));
  source.update({ ...source.current, masterPid: master.pid! });
  // Past the test's own timeout: only the master's exit can end the wait.
  ops.graceMs = 3_600_000;
  ops.stopOutcome = new Promise(() => {});
  ops.onStop = () => void master.kill('SIGTERM');
  const result = await clusterd(dir, 'stop', 'api');
  t.is(result.exitCode, 0, result.stderr);
  t.is(result.stderr, `clusterd: the master (pid ${master.pid}) exited without saying how the stop went: its log names any worker it killed rather than drained`);
  t.is(result.stdout, `stopped cluster api (master pid ${master.pid})`);
});

test('stop of a master older than stop_terms: one Stop, answered at once, its --grace read from the reply, exit 0 as before', async (t) => {
  const dir = tempDir(t);
  const { ops, source } = await serveOps(t, { dir });
  const master = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e6)'], { stdio: 'ignore' });
  t.teardown(() => master.kill('SIGKILL'));
  source.update({ ...source.current, masterPid: master.pid!, stopTerms: null });
  // An older master knows no outcome: what the fake would say, it is not asked for.
  ops.stopOutcome = new Promise(() => {});
  ops.graceMs = 1;
  const timedOut = await clusterd(dir, 'stop', 'api');
  t.is(timedOut.exitCode, ExitCode.STOP_TIMEOUT, 'waited the grace of the reply (1 ms) plus the margin');
  ops.onStop = () => void master.kill('SIGTERM');
  const result = await clusterd(dir, 'stop', 'api');
  t.is(result.exitCode, 0, result.stderr);
  t.is(result.stderr, '');
  t.deepEqual(ops.calls, ['stop', 'stop']);
});

test('stop exits 10 when the master is still there after its grace plus the margin', async (t) => {
  const dir = tempDir(t);
  const { ops, source } = await serveOps(t, { dir });
  const master = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e6)'], { stdio: 'ignore' });
  t.teardown(() => master.kill('SIGKILL'));
  source.update({ ...source.current, masterPid: master.pid! });
  ops.graceMs = 1;
  const result = await clusterd(dir, 'stop', 'api');
  t.is(result.exitCode, ExitCode.STOP_TIMEOUT);
  t.regex(result.stderr, new RegExp(`^clusterd: cluster api \\(master pid ${master.pid}\\) is still running \\d+s after it was asked to stop$`));
});

test('stop of a master with --grace 0: waits for it 5 s, its grace plus the margin, not the default grace\'s 15 s', async (t) => {
  const dir = tempDir(t);
  const { ops, source } = await serveOps(t, { dir });
  const master = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e6)'], { stdio: 'ignore' });
  t.teardown(() => master.kill('SIGKILL'));
  source.update({ ...source.current, masterPid: master.pid! });
  ops.graceMs = 0;
  const result = await clusterd(dir, 'stop', 'api');
  t.is(result.exitCode, ExitCode.STOP_TIMEOUT);
  t.is(result.stderr, `clusterd: cluster api (master pid ${master.pid}) is still running 5s after it was asked to stop`);
});

test('stop whose master killed workers: their lines on stderr, exit 5 (6 for a forced stop); stop --all the same, each line under its cluster', async (t) => {
  const dir = tempDir(t);
  const { ops, source } = await serveOps(t, { dir });
  const message = 'worker 2 (pid 40002): --grace 1s over: killed (SIGKILL), destroying 3 HTTP requests in flight';
  for (const [exitCode, args] of [[ExitCode.GRACE_EXPIRED, ['stop', 'api']], [ExitCode.FORCED, ['stop']], [ExitCode.GRACE_EXPIRED, ['stop', '--all']]] as Array<[number, string[]]>) {
    const master = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e6)'], { stdio: 'ignore' });
    t.teardown(() => master.kill('SIGKILL'));
    source.update({ ...source.current, masterPid: master.pid! });
    ops.onStop = () => void master.kill('SIGTERM');
    ops.stopOutcome = Promise.resolve({ exitCode, killed: [{ id: 2, pid: 40_002, message }] });
    const result = await clusterd(dir, ...args);
    t.is(result.exitCode, exitCode, args.join(' '));
    t.is(result.stderr, `clusterd: ${args.includes('--all') ? 'api: ' : ''}${message}`);
    t.is(result.stdout, `stopped cluster api (master pid ${master.pid})`);
  }
});

test('stop --all: a cluster still running (10) is not hidden behind another\'s killed workers (5), whichever comes first by name', async (t) => {
  const dir = tempDir(t);
  const killing = await serveOps(t, { dir, name: 'a' });
  const stuck = await serveOps(t, { dir, name: 'b' });
  const masters = ['a', 'b'].map(() => spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e6)'], { stdio: 'ignore' }));
  for (const master of masters) t.teardown(() => master.kill('SIGKILL'));
  killing.source.update({ ...killing.source.current, masterPid: masters[0]!.pid! });
  killing.ops.onStop = () => void masters[0]!.kill('SIGTERM');
  const message = 'worker 1 (pid 40001): --grace 1s over: killed (SIGKILL), destroying 1 HTTP request in flight';
  killing.ops.stopOutcome = Promise.resolve({ exitCode: ExitCode.GRACE_EXPIRED, killed: [{ id: 1, pid: 40_001, message }] });
  stuck.source.update({ ...stuck.source.current, masterPid: masters[1]!.pid! });
  stuck.ops.graceMs = 1;
  const result = await clusterd(dir, 'stop', '--all');
  t.is(result.exitCode, ExitCode.STOP_TIMEOUT, result.stderr);
  t.deepEqual(result.stderr.split('\n'), [`clusterd: a: ${message}`, `clusterd: cluster b (master pid ${masters[1]!.pid}) is still running 5s after it was asked to stop`]);
});

test('stack prints the state and V8-style frames; --json the same as data; unknown worker exit 7', async (t) => {
  const dir = tempDir(t);
  const { ops } = await serveOps(t, { dir });
  ops.stacks.set(1, SPIN_STACK);
  const text = await clusterd(dir, 'stack', '1');
  t.is(text.exitCode, 0, text.stderr);
  t.deepEqual(text.stdout.split('\n'), [
    'worker 1 (pid 40001): blocked',
    '    at spinForever (file:///srv/app/server.js:27:5)',
    '    at listOnTimeout (node:internal/timers:581:17)',
    '    at <anonymous> (<unknown>)',
  ]);
  const json = await clusterd(dir, 'stack', 'api', '1', '--json');
  t.is(json.exitCode, 0, json.stderr);
  t.deepEqual(JSON.parse(json.stdout), { id: 1, pid: 40_001, state: 'blocked', frames: SPIN_STACK.stack });

  const idle = await clusterd(dir, 'stack', '2');
  t.deepEqual(idle.stdout.split('\n'), ['worker 2 (pid 40002): idle', '    (no JavaScript running: waiting in the event loop)']);

  const unknown = await clusterd(dir, 'stack', '3');
  t.is(unknown.exitCode, ExitCode.NOT_FOUND);
  t.is(unknown.stderr, 'clusterd: no worker 3 in cluster api (workers: 1, 2)');
});

test('status shows each worker\'s generation and a line naming a blocked loop', async (t) => {
  const dir = tempDir(t);
  const { ops } = await serveOps(t, { dir });
  ops.blocked.set(2, { ...SPIN_STACK, time: Date.UTC(2024, 0, 2, 3, 4, 5), blockedMs: 1503.6, pid: 4242 });
  const text = await clusterd(dir, 'status');
  t.is(text.exitCode, 0, text.stderr);
  const lines = text.stdout.split('\n');
  t.regex(lines[2]!, /^ID +PID +STATE +GEN +UPTIME/);
  t.regex(lines[3]!, /^ 1 +40001 +ready +1 +1m05s/);
  t.is(lines.at(-1), 'worker 2: loop blocked 1504 ms at 2024-01-02 03:04:05 UTC, in spinForever (file:///srv/app/server.js:27:5)');
  const json = JSON.parse((await clusterd(dir, 'status', '--json')).stdout) as { workers: { generation: number; lastBlocked: unknown }[] };
  t.deepEqual(json.workers.map((w) => w.generation), [1, 1]);
  t.is(json.workers[0]!.lastBlocked, null);
  t.like(json.workers[1]!.lastBlocked, { blockedMs: 1503.6, frames: SPIN_STACK.stack });
});

test('logs prints recent lines, stderr ones on stderr; --json and --worker', async (t) => {
  const dir = tempDir(t);
  const { ops } = await serveOps(t, { dir });
  ops.log(logEntry(1, 'listening'));
  ops.log(logEntry(2, 'oops', { stream: 'stderr' }));
  ops.log(logEntry(2, 'listening'));
  const text = await clusterd(dir, 'logs');
  t.is(text.exitCode, 0, text.stderr);
  t.is(text.stdout, '[w1] listening\n[w2] listening');
  t.is(text.stderr, '[w2] oops');

  const json = await clusterd(dir, 'logs', 'api', '--json', '--worker', '2', '--lines', '1');
  t.is(json.exitCode, 0, json.stderr);
  t.deepEqual(JSON.parse(json.stdout), { time: '2024-01-02T03:04:05.000Z', worker: 2, pid: 40_002, stream: 'stdout', message: 'listening' });

  const unknown = await clusterd(dir, 'logs', '--worker', '5');
  t.is(unknown.exitCode, ExitCode.NOT_FOUND);
});

test('logs -f keeps streaming until interrupted, exits 0, and releases its subscription', async (t) => {
  const dir = tempDir(t);
  const { ops, server } = await serveOps(t, { dir });
  ops.log(logEntry(1, 'old'));
  const logs = execa(process.execPath, [CLI, 'logs', '-f'], { env: { CLUSTERD_RUNTIME_DIR: dir }, reject: false, buffer: false });
  t.teardown(() => logs.kill('SIGKILL'));
  let output = '';
  logs.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  await waitFor(() => output === '[w1] old\n' && ops.logListeners.size === 1, { what: 'the recent line' });
  ops.log(logEntry(2, 'new'));
  await waitFor(() => output.endsWith('[w2] new\n'), { what: 'the new line' });
  logs.kill('SIGINT');
  t.is((await logs).exitCode, 0);
  await waitFor(() => ops.logListeners.size === 0 && server.streams === 0, { what: 'the follower to be released' });
  t.pass();
});
