// start()'s master belongs to its caller (src/api/start.ts): the cluster's output reaches the caller's
// own stdout and stderr, and a caller that dies, even by SIGKILL, takes its cluster with it, gracefully.
import test, { type ExecutionContext } from 'ava';
import { execa, type ResultPromise } from 'execa';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { processState } from '../src/system/process-state.js';
import { CLI, fixture, get, isRunning, waitFor } from './helpers/cluster.js';

const INDEX = pathToFileURL(fileURLToPath(new URL('../dist/index.js', import.meta.url))).href;

/** A caller script with `source` in a directory of the test's own (its runtime dir too), removed after. */
function callerScript(t: { teardown(fn: () => void): void }, source: string): { dir: string; script: string } {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-caller-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const script = join(dir, 'caller.mjs');
  writeFileSync(script, source);
  return { dir, script };
}

test("a start() caller killed by SIGKILL takes its cluster with it; the cluster's output was the caller's", async (t) => {
  const { dir, script } = callerScript(t,
    `import { start } from ${JSON.stringify(INDEX)};
const cluster = await start({ entry: ${JSON.stringify(fixture('logs-at-start.js'))}, instances: 1, name: 'caller-owned' });
const status = await cluster.status();
console.log(\`pids \${cluster.masterPid} \${status.workers.map((worker) => worker.pid).join(' ')}\`);
`,
  );
  const caller = execa(process.execPath, [script], { env: { CLUSTERD_RUNTIME_DIR: dir }, reject: false, stdin: 'ignore' });
  t.teardown(() => caller.kill('SIGKILL'));
  const lines: string[] = [];
  const pids = await new Promise<number[]>((resolve, reject) => {
    const reader = createInterface({ input: caller.stdout! });
    reader.on('line', (line) => {
      lines.push(line);
      if (line.startsWith('pids ')) resolve(line.split(' ').slice(1).map(Number));
    });
    void caller.then((result) => reject(new Error(`the caller exited first: ${String(result.stderr)}`)));
  });
  // The worker's own line came through the caller's stdout (no log file took it).
  await waitFor(() => lines.includes('[w1] worker 1 up'), { what: "the worker's line on the caller's stdout" });
  t.true(pids.length === 2 && pids.every(isRunning), `pids ${pids.join(' ')}`);
  caller.kill('SIGKILL');
  await waitFor(() => pids.every((pid) => !isRunning(pid)), { what: 'the master and its worker gone with their caller', timeoutMs: 20_000 });
  t.pass();
});

test("start()'s config file (every option, the env's secrets too) is gone once its master read it, even if the caller is killed before the cluster is ready", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-caller-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const temp = join(dir, 'tmp');
  mkdirSync(temp);
  const script = join(dir, 'caller.mjs');
  writeFileSync(
    script,
    `import { start } from ${JSON.stringify(INDEX)};
await start({ entry: ${JSON.stringify(fixture('never-listens.js'))}, instances: 1, name: 'caller-secrets', env: { DB_PASSWORD: 'hunter2' } });
`,
  );
  const caller = execa(process.execPath, [script], { env: { CLUSTERD_RUNTIME_DIR: dir, TMPDIR: temp }, reject: false, stdin: 'ignore' });
  t.teardown(() => caller.kill('SIGKILL'));
  const written = () => readdirSync(temp).filter((name) => name.startsWith('clusterd-api-'));
  // The master has read it once its control socket is there; the cluster is not ready (its app never listens).
  await waitFor(() => existsSync(join(dir, 'caller-secrets.sock')), { what: "the master's control socket" });
  caller.kill('SIGKILL');
  await waitFor(() => written().length === 0, { what: 'the config file removed', timeoutMs: 20_000 });
  t.pass();
});

/**
 * A caller that starts slow-routes.js (GET /slow answers after 1.5 s) and prints `ready <port>
 * <master pid>`; on the line `exit` it calls process.exit(), on `throw` it throws. It leads a process
 * group, as a program run from a shell does.
 */
function slowCaller(t: ExecutionContext, name: string): { caller: ResultPromise; lines: string[]; ready: Promise<[number, number]> } {
  const { dir, script } = callerScript(t,
    `import { createInterface } from 'node:readline';
import { start } from ${JSON.stringify(INDEX)};
const cluster = await start({ entry: ${JSON.stringify(fixture('slow-routes.js'))}, instances: 1, name: ${JSON.stringify(name)}, env: { SLOW_MS: 1500 } });
console.log(\`ready \${cluster.endpoints.addresses[0].split(':').pop()} \${cluster.masterPid}\`);
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line === 'exit') process.exit(0);
  if (line === 'throw') throw new Error('the caller failed');
});
`,
  );
  const caller = execa(process.execPath, [script], { env: { CLUSTERD_RUNTIME_DIR: dir }, reject: false, detached: true });
  t.teardown(() => {
    // The caller, and its master should the test have failed before it stopped.
    try {
      process.kill(-caller.pid!, 'SIGKILL');
    } catch {
      // All gone already.
    }
  });
  const lines: string[] = [];
  const ready = new Promise<[number, number]>((resolve, reject) => {
    createInterface({ input: caller.stdout! }).on('line', (line) => {
      lines.push(line);
      if (line.startsWith('ready ')) resolve(line.split(' ').slice(1).map(Number) as [number, number]);
    });
    void caller.then((result) => reject(new Error(`the caller exited first: ${String(result.stderr)}`)));
  });
  return { caller, lines, ready };
}

// Each of these ends the caller while a request is in flight: the master is asked to stop once (the
// IPC channel closing, or the signal it had too), and the request finishes within --grace. It was
// asked twice (a SIGTERM from the caller's exit handler, or the signal, and then the channel closing),
// and the second killed the worker with the request.
const endings: Array<[string, string, (caller: ResultPromise) => void]> = [
  ['calls process.exit()', 'exit', (caller) => caller.stdin!.write('exit\n')],
  ['throws', 'throw', (caller) => caller.stdin!.write('throw\n')],
  ['gets Ctrl-C (SIGINT to its process group)', 'sigint', (caller) => process.kill(-caller.pid!, 'SIGINT')],
  ['gets SIGTERM with its process group', 'sigterm', (caller) => process.kill(-caller.pid!, 'SIGTERM')],
];
for (const [how, name, end] of endings) {
  test.serial(`a start() caller that ${how} stops its cluster gracefully, once: a request in flight is answered`, async (t) => {
    const { caller, lines, ready } = slowCaller(t, `caller-${name}`);
    const [port, masterPid] = await ready;
    const answer = get(port, '/slow');
    await waitFor(() => lines.some((line) => line.startsWith('[w1] slow request started')), { what: 'the request in flight' });
    end(caller);
    const response = await answer;
    t.is(response.status, 200);
    t.is(JSON.parse(response.body).url, '/slow');
    await waitFor(() => !isRunning(masterPid), { what: 'the master gone with its caller', timeoutMs: 20_000 });
    // The master's output is the caller's stdout: complete once the master has exited.
    await caller;
    const stops = lines.filter((line) => /stopping gracefully|killing workers|draining now/.test(line));
    t.is(stops.length, 1, lines.join('\n'));
    t.true(lines.some((line) => line.endsWith(`caller-${name} stopped`)), lines.join('\n'));
  });
}

test.serial('the signal a start() caller\'s master had too, coming after the caller is gone, does not force the stop: a request in flight is answered', async (t) => {
  // The order a process group's SIGTERM can take: the caller dies, its channel closes (a graceful
  // stop), and then the master's own signal is read, which counted as the second and killed the worker.
  const { caller, lines, ready } = slowCaller(t, 'caller-late-signal');
  const [port, masterPid] = await ready;
  const answer = get(port, '/slow');
  await waitFor(() => lines.some((line) => line.startsWith('[w1] slow request started')), { what: 'the request in flight' });
  process.kill(caller.pid!, 'SIGKILL');
  await waitFor(() => lines.some((line) => line.includes('the process that called start() is gone')), { what: 'the master hearing its caller gone' });
  process.kill(masterPid, 'SIGTERM');
  const response = await answer;
  t.is(response.status, 200);
  await waitFor(() => !isRunning(masterPid), { what: 'the master gone with its caller', timeoutMs: 20_000 });
  await caller;
  t.deepEqual(lines.filter((line) => /killing workers|draining now/.test(line)), [], lines.join('\n'));
  t.true(lines.some((line) => line.includes('SIGTERM: already stopping')), lines.join('\n'));
});

/** The processes that have `CLUSTERD_RUNTIME_DIR=dir` in their environment: a caller's master, its reaper, its workers. */
function processesOf(dir: string): number[] {
  const mine = `CLUSTERD_RUNTIME_DIR=${dir}`;
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(mine) && isRunning(Number(pid));
      } catch {
        return false;
      }
    })
    .map(Number);
}

test('a start() caller killed while start() is pending, before its master listens for the caller going, takes the master and its workers with it', async (t) => {
  // 0 ms: the master is still loading, long before it listens for the channel to close. The others
  // fall later in its start, or in its workers' boot.
  for (const delayMs of [0, 150, 300]) {
    const dir = mkdtempSync(join(tmpdir(), 'clusterd-caller-'));
    t.teardown(() => {
      for (const pid of processesOf(dir)) process.kill(pid, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    });
    const script = join(dir, 'caller.mjs');
    writeFileSync(
      script,
      `import { start } from ${JSON.stringify(INDEX)};
start({ entry: ${JSON.stringify(fixture('hello.js'))}, instances: 2, name: 'caller-early', output: 'ignore' });
setTimeout(() => process.kill(process.pid, 'SIGKILL'), ${delayMs});
`,
    );
    const caller = await execa(process.execPath, [script], { env: { CLUSTERD_RUNTIME_DIR: dir }, reject: false, stdin: 'ignore' });
    t.is(caller.signal, 'SIGKILL');
    await waitFor(() => processesOf(dir).length === 0, { what: `the master and its workers gone (caller killed after ${delayMs} ms)`, timeoutMs: 20_000 });
    t.false(existsSync(join(dir, 'caller-early.sock')), 'the name is free');
  }
});

// The master's process does not hold its caller alive (only an open handle's status stream does): a
// caller done with its work exits, and its cluster stops with it. stop() still waits for the master.
for (const ending of ['close', 'stop'] as const) {
  test(`a start() caller that ${ending === 'close' ? 'close()s its handle exits on its own, and its cluster stops with it' : 'awaits stop() with nothing else to do gets its exit code'}`, async (t) => {
    const { dir, script } = callerScript(t,
      `import { start } from ${JSON.stringify(INDEX)};
const cluster = await start({ entry: ${JSON.stringify(fixture('hello.js'))}, instances: 1, name: 'caller-${ending}', output: 'ignore' });
const status = await cluster.status();
console.log(\`pids \${cluster.masterPid} \${status.workers.map((worker) => worker.pid).join(' ')}\`);
if (process.argv[2] === 'stop') console.log(JSON.stringify(await cluster.stop()));
else cluster.close();
`,
    );
    const caller = execa(process.execPath, [script, ending], { env: { CLUSTERD_RUNTIME_DIR: dir }, reject: false, stdin: 'ignore' });
    t.teardown(() => caller.kill('SIGKILL'));
    let exited = false;
    void caller.finally(() => (exited = true));
    await waitFor(() => exited, { what: 'the caller to exit on its own', timeoutMs: 20_000 });
    const result = await caller;
    t.is(result.exitCode, 0, String(result.stderr));
    const [first, ...rest] = String(result.stdout).split('\n');
    const pids = first!.split(' ').slice(1).map(Number);
    t.is(pids.length, 2);
    if (ending === 'stop') t.deepEqual(rest.map((line) => JSON.parse(line)), [{ exitCode: 0, signal: null, killed: [] }]);
    await waitFor(() => pids.every((pid) => !isRunning(pid)), { what: 'the master and its worker gone with their caller', timeoutMs: 20_000 });
    t.false(existsSync(join(dir, `caller-${ending}.sock`)), 'the name is free');
  });
}

test("a handle's listener that throws: the throw is uncaught, and the handle goes on emitting (it stopped reading its status stream)", async (t) => {
  const { dir, script } = callerScript(t,
    `import { once } from 'node:events';
import { start } from ${JSON.stringify(INDEX)};
const uncaught = [];
process.on('uncaughtException', (error) => uncaught.push(error.message));
const cluster = await start({ entry: ${JSON.stringify(fixture('hello.js'))}, instances: 1, name: 'caller-throws', statsInterval: '100ms', output: 'ignore' });
let samples = 0;
cluster.on('sample', () => {
  samples++;
  if (samples === 1) throw new Error('a listener bug');
});
while (samples < 3) await once(cluster, 'sample');
const exited = once(cluster, 'worker-exit');
const ready = once(cluster, 'ready');
await cluster.reload();
await Promise.all([exited, ready]);
console.log(JSON.stringify({ uncaught, stopped: await cluster.stop() }));
`,
  );
  const caller = execa(process.execPath, [script], { env: { CLUSTERD_RUNTIME_DIR: dir }, reject: false, stdin: 'ignore', timeout: 30_000 });
  t.teardown(() => caller.kill('SIGKILL'));
  const result = await caller;
  t.is(result.exitCode, 0, `${String(result.stderr)} ${result.timedOut ? '(timed out: the handle went silent)' : ''}`);
  t.deepEqual(JSON.parse(String(result.stdout)), { uncaught: ['a listener bug'], stopped: { exitCode: 0, signal: null, killed: [] } });
});

test('`clusterd stop` of a start() cluster whose caller\'s loop is busy: the master that exited is stopped, though its caller has not reaped it yet', async (t) => {
  // The caller blocks its loop for good once its cluster is ready: the master, its child, stays a
  // zombie once it exits, which kill(pid, 0) took for a running master ("still running 6s after it
  // was asked to stop", exit 10).
  const { dir, script } = callerScript(t,
    `import { writeSync } from 'node:fs';
import { start } from ${JSON.stringify(INDEX)};
const cluster = await start({ entry: ${JSON.stringify(fixture('hello.js'))}, instances: 1, name: 'caller-busy', grace: '1s', output: 'ignore' });
writeSync(1, \`master \${cluster.masterPid}\\n\`);
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60_000);
`,
  );
  const caller = execa(process.execPath, [script], { env: { CLUSTERD_RUNTIME_DIR: dir }, reject: false, stdin: 'ignore' });
  t.teardown(() => caller.kill('SIGKILL'));
  const masterPid = await new Promise<number>((resolve, reject) => {
    const reader = createInterface({ input: caller.stdout! });
    reader.on('line', (line) => line.startsWith('master ') && resolve(Number(line.split(' ')[1])));
    void caller.then((result) => reject(new Error(`the caller exited first: ${String(result.stderr)}`)));
  });
  const stopped = await execa(process.execPath, [CLI, 'stop', 'caller-busy'], { env: { CLUSTERD_RUNTIME_DIR: dir }, reject: false, timeout: 30_000 });
  t.is(stopped.exitCode, 0, String(stopped.stderr));
  t.is(String(stopped.stdout), `stopped cluster caller-busy (master pid ${masterPid})`);
  t.is(processState(masterPid), 'Z', 'the master exited, and its caller has not reaped it');
});
