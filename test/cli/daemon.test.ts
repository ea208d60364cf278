// `clusterd start -d`: returns once every worker is ready (or the app failed), logs to a file.
import test from 'ava';
import { execa } from 'execa';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, fixture, get, isRunning, waitFor } from '../helpers/cluster.js';
import { freePort } from '../helpers/requests.js';
import { nativeHelper } from '../../src/system/native.js';
import { withoutDaemonFlag } from '../../src/cli/daemon-parent.js';
import { DAEMON_ENV } from '../../src/cli/daemon.js';

function runtime(t: { teardown(fn: () => void): void }): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-daemon-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return { CLUSTERD_RUNTIME_DIR: dir };
}

function clusterd(args: string[], env: Record<string, string>) {
  return execa(process.execPath, [CLI, ...args], { env, reject: false, timeout: 60_000 });
}

async function masterPid(name: string, env: Record<string, string>): Promise<number> {
  const { stdout } = await clusterd(['status', name, '--json'], env);
  return (JSON.parse(stdout) as { masterPid: number }).masterPid;
}

test('start -d returns once ready, serves in the background and logs to a file', async (t) => {
  const env = runtime(t);
  const started = await clusterd(['start', fixture('logs-at-start.js'), '-i', '2', '--name', 'bg', '-d', '--metrics', '127.0.0.1:0', '--health', '127.0.0.1:0'], env);
  t.is(started.exitCode, 0, started.stderr);
  t.regex(started.stdout, /bg started in the background: master pid \d+, 2 workers \(pids \d+, \d+\) on 127\.0\.0\.1:\d+/);
  // The ports the system picked for the master's own listeners: in the text too, not only in JSON.
  t.regex(started.stdout, /; metrics on http:\/\/127\.0\.0\.1:[1-9]\d*\/metrics; health on 127\.0\.0\.1:[1-9]\d*\n/);
  t.true(started.stdout.includes(join(env.CLUSTERD_RUNTIME_DIR!, 'bg.sock')), started.stdout);
  const pid = await masterPid('bg', env);
  t.teardown(() => {
    if (isRunning(pid)) process.kill(pid, 'SIGKILL');
  });
  t.true(Number.isInteger(pid) && isRunning(pid), 'the master runs on after the CLI returned');

  const status = JSON.parse((await clusterd(['status', 'bg', '--json'], env)).stdout) as { workers: { state: string }[] };
  t.deepEqual(status.workers.map((worker) => worker.state), ['ready', 'ready']);
  const logPath = join(env.CLUSTERD_RUNTIME_DIR!, 'bg.log');
  await waitFor(() => readFileSync(logPath, 'utf8').includes('[w2] worker 2 warming caches'), { what: 'worker lines in the log file' });
  const log = readFileSync(logPath, 'utf8');
  t.regex(log, /\[w1\] worker 1 up/);
  t.regex(log, /bg ready on 127\.0\.0\.1:\d+ with 2 workers \(pids \d+, \d+\); metrics on http:\/\/127\.0\.0\.1:[1-9]\d*\/metrics; health on 127\.0\.0\.1:[1-9]\d*$/m);

  process.kill(pid, 'SIGTERM');
  await waitFor(() => !isRunning(pid), { timeoutMs: 15_000, what: 'the daemon master to exit' });
  t.regex(readFileSync(logPath, 'utf8'), /bg stopped/);
});

test('start -d says on stderr the warnings its master logs before it is ready, which were in the log file alone', async (t) => {
  const env = runtime(t);
  const started = await clusterd(['start', fixture('hello.js'), '-i', '1', '--name', 'warned', '-d', '--watchdog', '1s', '--report-blocked', '5s'], env);
  t.is(started.exitCode, 0, started.stderr);
  const pid = await masterPid('warned', env);
  t.teardown(() => {
    if (isRunning(pid)) process.kill(pid, 'SIGKILL');
  });
  t.regex(started.stderr, /^clusterd: --report-blocked 5000 ms is not below --watchdog 1000 ms: .*$/m);
  t.regex(started.stdout, /^clusterd: warned started in the background/);
  // Warnings after the ready go to the log file only: nobody waits on stderr by then.
  t.is(started.stderr.split('\n').filter(Boolean).length, 1, started.stderr);
  t.is((await clusterd(['stop', 'warned'], env)).exitCode, 0);
});

test('start -d marks an address a worker binds alone (exclusive: true) as the ready line does', async (t) => {
  const env = runtime(t);
  const port = await freePort();
  const started = await clusterd(['start', fixture('exclusive-port.js'), '-i', '1', '--name', 'bg-exclusive', '-d'], { ...env, PORT: String(port) });
  t.is(started.exitCode, 0, started.stderr);
  const pid = await masterPid('bg-exclusive', env);
  t.teardown(() => {
    if (isRunning(pid)) process.kill(pid, 'SIGKILL');
  });
  t.regex(started.stdout, new RegExp(`1 worker \\(pid \\d+\\) on 127\\.0\\.0\\.1:${port} \\(exclusive: worker 1's own\\)`));
  t.is((await clusterd(['stop', 'bg-exclusive'], env)).exitCode, 0);
});

test('start -d takes --log-max-size (its log rotates); with --log-file, the master\'s own output goes to that file too', async (t) => {
  const env = runtime(t);
  const plain = await clusterd(['start', fixture('hello.js'), '-i', '1', '--name', 'bg-rotating', '-d', '--log-max-size', '2K'], env);
  t.is(plain.exitCode, 0, plain.stderr);
  const plainPid = await masterPid('bg-rotating', env);
  t.teardown(() => {
    if (isRunning(plainPid)) process.kill(plainPid, 'SIGKILL');
  });

  const logFile = join(env.CLUSTERD_RUNTIME_DIR!, 'app.log');
  const filed = await clusterd(['start', fixture('hello.js'), '-i', '1', '--name', 'bg-filed', '-d', '--log-file', logFile], env);
  t.is(filed.exitCode, 0, filed.stderr);
  t.true(filed.stdout.includes(`logs ${logFile}`), filed.stdout);
  const filedPid = await masterPid('bg-filed', env);
  t.teardown(() => {
    if (isRunning(filedPid)) process.kill(filedPid, 'SIGKILL');
  });
  // A crash's stack, a Node warning: what the master writes to its stdout and stderr lands in the
  // file it was told to log to, not in a second one nobody was told of.
  for (const fd of [1, 2]) t.is(readlinkSync(`/proc/${filedPid}/fd/${fd}`), logFile);
  t.false(existsSync(join(env.CLUSTERD_RUNTIME_DIR!, 'bg-filed.log')));

  for (const pid of [plainPid, filedPid]) process.kill(pid, 'SIGTERM');
  await waitFor(() => !isRunning(plainPid) && !isRunning(filedPid), { timeoutMs: 15_000, what: 'the daemon masters to exit' });
});

test('start -d: the master\'s own stdout and stderr follow its log file through rotation and SIGUSR1', async (t) => {
  t.truthy(nativeHelper()?.dup2, 'the native helper re-points them (npm install builds it)');
  const env = runtime(t);
  const logFile = join(env.CLUSTERD_RUNTIME_DIR!, 'app.log');
  const started = await clusterd(['start', fixture('logs-per-request.js'), '-i', '1', '--name', 'bg-follows', '-d', '--log-file', logFile, '--log-max-size', '1K', '--log-keep', '1'], env);
  t.is(started.exitCode, 0, started.stderr);
  const pid = await masterPid('bg-follows', env);
  t.teardown(() => {
    if (isRunning(pid)) process.kill(pid, 'SIGKILL');
  });
  const port = Number(/ on 127\.0\.0\.1:(\d+)/.exec(started.stdout)![1]);
  const stdio = () => [1, 2].map((fd) => readlinkSync(`/proc/${pid}/fd/${fd}`));
  let request = 0;
  const logged = async (): Promise<void> => {
    const url = `/request-${request++}`;
    await get(port, url);
    await waitFor(() => readFileSync(logFile, 'utf8').includes(`err ${url}\n`), { what: `the lines of ${url}` });
  };

  await waitFor(async () => existsSync(`${logFile}.1`) || (await logged(), false), { what: 'a rotation' });
  t.deepEqual(stdio(), [logFile, logFile], 'rotated: on the new file, not on app.log.1');

  renameSync(logFile, `${logFile}.moved`);
  process.kill(pid, 'SIGUSR1');
  await waitFor(() => existsSync(logFile) && readFileSync(logFile, 'utf8').includes('reopened (SIGUSR1)'), { what: 'the reopened file' });
  t.deepEqual(stdio(), [logFile, logFile], 'reopened: on the new file, not on the one moved away');

  // Something the master writes to its own stderr: a rotation that fails (FILE.1 a directory that
  // is not empty) says so there. It lands in the file being written, not in one rotated or moved away.
  rmSync(`${logFile}.1`);
  mkdirSync(`${logFile}.1`);
  writeFileSync(join(`${logFile}.1`, 'keep'), '');
  await waitFor(async () => readFileSync(logFile, 'utf8').includes('rotating') || (await logged(), false), { what: 'the failed rotation said' });
  t.regex(readFileSync(logFile, 'utf8'), /^clusterd: rotating .*app\.log failed: .*; lines go on into it, past --log-max-size$/m);
  t.false(readFileSync(`${logFile}.moved`, 'utf8').includes('rotating'));

  process.kill(pid, 'SIGTERM');
  await waitFor(() => !isRunning(pid), { timeoutMs: 15_000, what: 'the daemon master to exit' });
});

test('start -d of an app that cannot boot exits non-zero with the reason, leaving nothing running', async (t) => {
  const env = runtime(t);
  const started = await clusterd(['start', fixture('throws-at-start.js'), '-i', '1', '--name', 'broken', '-d'], env);
  t.is(started.exitCode, 3);
  t.regex(started.stderr, /^clusterd: error: app failed to boot/m);
  t.regex(started.stderr, /cannot reach the database/);
  const listed = await clusterd(['ls', '--json'], env);
  await waitFor(async () => (JSON.parse((await clusterd(['ls', '--json'], env)).stdout) as unknown[]).length === 0, {
    what: 'no cluster left running',
  });
  t.is(listed.exitCode, 0);
});

test('start -d of an app that only writes to stdout and never listens quotes what it wrote there, not only clusterd\'s own note', async (t) => {
  const env = runtime(t);
  // never-listens.js prints `started` on stdout and nothing on stderr.
  const started = await clusterd(['start', fixture('never-listens.js'), '-i', '1', '--name', 'quiet', '--listen-timeout', '2s', '--max-boot-failures', '1', '-d'], env);
  t.is(started.exitCode, 3);
  t.regex(started.stderr, /^ {2}\| started$/m, started.stderr);
  t.regex(started.stderr, /^ {2}\| \(clusterd: not ready after 2000 ms/m, started.stderr);
});

test('Ctrl-C while start -d waits for a master that is still booting: one line saying it boots on and how to stop it, exit 130', async (t) => {
  const env = runtime(t);
  const waiting = execa(process.execPath, [CLI, 'start', fixture('never-listens.js'), '-i', '1', '--name', 'interrupted', '-d', '--listen-timeout', '10m'], { env, reject: false, timeout: 60_000 });
  // The master answers once its control plane is up, before any worker could be ready.
  const pid = await waitFor(async () => (await clusterd(['status', 'interrupted', '--json'], env)).exitCode === 0 && masterPid('interrupted', env), { what: 'the master to answer', timeoutMs: 30_000 });
  t.teardown(() => {
    if (isRunning(pid)) process.kill(pid, 'SIGKILL');
  });
  waiting.kill('SIGINT');
  const result = await waiting;
  t.is(result.exitCode, 130);
  const logPath = join(env.CLUSTERD_RUNTIME_DIR!, 'interrupted.log');
  t.is(result.stderr, `clusterd: stopped waiting; interrupted is still starting in the background (master pid ${pid}, log ${logPath}); \`clusterd stop interrupted\` stops it`);
  t.true(isRunning(pid), 'the master boots on');
  t.is((await clusterd(['stop', 'interrupted'], env)).exitCode, 0);
});

test('start -d with the name of a running cluster is refused before anything starts', async (t) => {
  const env = runtime(t);
  const first = await clusterd(['start', fixture('hello.js'), '-i', '1', '--name', 'twice', '-d'], env);
  t.is(first.exitCode, 0, first.stderr);
  const pid = await masterPid('twice', env);
  t.teardown(() => {
    if (isRunning(pid)) process.kill(pid, 'SIGKILL');
  });
  const second = await clusterd(['start', fixture('hello.js'), '-i', '1', '--name', 'twice', '-d'], env);
  t.is(second.exitCode, 2);
  t.is(second.stderr.trim(), `clusterd: a cluster named twice is already running (pid ${pid})`);
  t.false(readFileSync(join(env.CLUSTERD_RUNTIME_DIR!, 'twice.log'), 'utf8').includes('already running'));
});

test("two start -d of one name at once: the master of the one that lost says why to its parent alone, not in the running cluster's log", async (t) => {
  // Both parents pass the check for a running cluster before either master has claimed the name;
  // the loser's master, its stdio on the same <name>.log, then finds the name taken. Played here
  // in that order: the loser's master is started as its parent starts it, after the winner is up.
  const env = runtime(t);
  const first = await clusterd(['start', fixture('hello.js'), '-i', '1', '--name', 'race', '-d'], env);
  t.is(first.exitCode, 0, first.stderr);
  const pid = await masterPid('race', env);
  t.teardown(() => {
    if (isRunning(pid)) process.kill(pid, 'SIGKILL');
  });
  const logPath = join(env.CLUSTERD_RUNTIME_DIR!, 'race.log');
  const before = readFileSync(logPath, 'utf8');
  const log = openSync(logPath, 'a');
  const loser = spawn(process.execPath, [CLI, 'start', fixture('hello.js'), '-i', '1', '--name', 'race'], {
    stdio: ['ignore', log, log, 'ipc'],
    env: { ...process.env, ...env, [DAEMON_ENV]: '1' },
  });
  closeSync(log);
  const reports: unknown[] = [];
  loser.on('message', (message) => reports.push(message));
  const [code] = (await once(loser, 'exit')) as [number | null];
  t.is(code, 2);
  t.like(reports[0], { type: 'fatal', message: `a cluster named race is already running (pid ${pid})`, exitCode: 2 });
  t.is(readFileSync(logPath, 'utf8'), before, 'the running cluster\'s log is as it was');
});

test('daemon: true in the config file starts one daemon master, which does not start another', async (t) => {
  const env = runtime(t);
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-daemon-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'clusterd.config.json'), JSON.stringify({ entry: fixture('hello.js'), instances: 1, name: 'filed', daemon: true }));
  const started = await execa(process.execPath, [CLI, 'start'], { env, cwd: dir, reject: false, timeout: 60_000 });
  t.is(started.exitCode, 0, started.stderr);
  t.regex(started.stdout, /filed started in the background/);
  const pid = await masterPid('filed', env);
  t.teardown(() => {
    if (isRunning(pid)) process.kill(pid, 'SIGKILL');
  });
  const listed = JSON.parse((await clusterd(['ls', '--json'], env)).stdout) as { name: string; masterPid: number }[];
  t.deepEqual(listed.map((cluster) => [cluster.name, cluster.masterPid]), [['filed', pid]]);
  process.kill(pid, 'SIGTERM');
  await waitFor(() => !isRunning(pid), { timeoutMs: 15_000, what: 'the daemon master to exit' });
});

test('start -d true (yargs reads the word as the yes/no flag\'s value) starts the master without it: it failed in the background on "Unknown argument: true"', async (t) => {
  t.deepEqual(withoutDaemonFlag(['app.js', '-d', 'true', '-i', '1']), ['app.js', '-i', '1']);
  t.deepEqual(withoutDaemonFlag(['--daemon', 'false', '-d', 'app.js', '--daemon=true', '-i', '1', '--', '-d', 'true']), ['app.js', '-i', '1', '--', '-d', 'true']);
  const env = runtime(t);
  const started = await clusterd(['start', fixture('hello.js'), '-i', '1', '--name', 'dtrue', '-d', 'true'], env);
  t.is(started.exitCode, 0, started.stderr);
  t.regex(started.stdout, /dtrue started in the background/);
  const pid = await masterPid('dtrue', env);
  t.teardown(() => {
    if (isRunning(pid)) process.kill(pid, 'SIGKILL');
  });
  process.kill(pid, 'SIGTERM');
  await waitFor(() => !isRunning(pid), { timeoutMs: 15_000, what: 'the daemon master to exit' });
});

test('a start -d master that dies before it is ready: the lines quoted are the ones this run wrote, not an earlier run\'s from the same log file', async (t) => {
  const env = runtime(t);
  const dir = env.CLUSTERD_RUNTIME_DIR!;
  const logFile = join(dir, 'app.log');
  writeFileSync(logFile, 'clusterd: a line from an earlier run\n');
  // The master (only it: the daemon's environment marks it) dies as it loads, before any report.
  const preload = join(dir, 'dies-as-master.cjs');
  writeFileSync(preload, `if (process.env.${DAEMON_ENV} === '1') { console.error('this run: the master died'); process.exit(7); }\n`);
  const started = await clusterd(['start', fixture('hello.js'), '-i', '1', '--name', 'diesearly', '-d', '--log-file', logFile], { ...env, NODE_OPTIONS: `--require ${preload}` });
  t.is(started.exitCode, 7, started.stderr);
  t.is(started.stderr, `clusterd: the master exited with code 7 before it was ready; see ${logFile}\n  | this run: the master died`);
});
