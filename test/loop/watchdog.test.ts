// The blocked-loop watchdog against really forked processes: the fixture runs the compiled watchdog
// (dist/, so `npm run build` first) on fd 4, and this side reads it through a WatchdogLink.
// Serial: a spinning fixture takes a whole core, and the thresholds are a few hundred ms.
import test, { type ExecutionContext } from 'ava';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { StackFrame } from '../../src/loop/watchdog.js';
import { WatchdogLink, formatStack, type BlockedReport, type StackReply } from '../../src/master/watchdog-link.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/watchdog-app.mjs', import.meta.url));
const THRESHOLD_MS = 300;

/** Where the line marked `<name>'s line` is in file, as the inspector reports it (1-based). */
function markedLine(name: string, file = FIXTURE): { line: number; column: number } {
  const lines = readFileSync(file, 'utf8').split('\n');
  const index = lines.findIndex((text) => text.includes(`${name}'s line`));
  return { line: index + 1, column: lines[index]!.search(/\S/) + 1 };
}

test.before(() => {
  // The fixture loads dist/: a stale build would test old code.
  for (const name of ['watchdog', 'watchdog-thread']) {
    const built = fileURLToPath(new URL(`../../dist/loop/${name}.js`, import.meta.url));
    const source = fileURLToPath(new URL(`../../src/loop/${name}.ts`, import.meta.url));
    let stale: boolean;
    try {
      stale = statSync(built).mtimeMs < statSync(source).mtimeMs;
    } catch {
      stale = true;
    }
    if (stale) throw new Error(`${built} is missing or older than its source: run \`npm run build\` first`);
  }
});

/** Resolves with promise, or rejects naming what did not happen within ms. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

interface Fixture {
  child: ChildProcess;
  link: WatchdogLink;
  blocked: BlockedReport[];
  /** 'warning' events of the link: garbage on the pipe, errors the thread reported. */
  warnings: string[];
  /** Resolves with the next IPC message from the fixture that matches. */
  message(match: (message: Record<string, unknown>) => boolean, what: string, ms?: number): Promise<Record<string, unknown>>;
  nextBlocked(ms?: number): Promise<BlockedReport>;
}

/**
 * Forks the fixture (by default plain node: it and the compiled watchdog need no loader) with the watchdog
 * pipe on fd 4 and waits until both it and its watchdog are ready.
 */
async function startFixture(t: ExecutionContext, thresholdMs: number, { file = FIXTURE, execArgv = [] as string[] } = {}): Promise<Fixture> {
  const child = fork(file, [], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc', 'pipe'],
    env: { ...process.env, WATCHDOG_THRESHOLD_MS: String(thresholdMs) },
    execArgv,
    // Where `--import tsx` resolves from.
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk));
  child.once('exit', (code, signal) => {
    if (output !== '') t.log(`fixture output (exit ${code ?? signal}):\n${output}`);
  });

  // Not closed on 'exit': the test that exits checks that the link closes by itself.
  const link = new WatchdogLink(child.stdio[4] as Duplex);
  const warnings: string[] = [];
  link.on('warning', (text: string) => warnings.push(text));
  const blocked: BlockedReport[] = [];
  link.on('blocked', (report: BlockedReport) => blocked.push(report));

  const message: Fixture['message'] = (match, what, ms = 5000) => within(new Promise((resolve) => {
    const listener = (received: Record<string, unknown>): void => {
      if (!match(received)) return;
      child.off('message', listener);
      resolve(received);
    };
    child.on('message', listener);
  }), ms, what);
  const nextBlocked: Fixture['nextBlocked'] = (ms = THRESHOLD_MS + 2000) =>
    within(once(link, 'blocked').then(([report]) => report as BlockedReport), ms, "'blocked' report");

  const [ready] = await within(Promise.all([
    once(link, 'ready'),
    message((received) => received.fixture === 'ready', 'fixture ready message'),
  ]), 10_000, 'ready fixture and watchdog');
  t.deepEqual(ready[0], { pid: child.pid, thresholdMs });
  return { child, link, blocked, warnings, message, nextBlocked };
}

/**
 * Asks for the stack until the worker reports idle (within ms): right after a message from it, its main
 * thread may still be finishing the callback that sent it, and busy is then the right answer.
 */
async function untilIdle(link: WatchdogLink, ms = 3000): Promise<StackReply> {
  const deadline = Date.now() + ms;
  for (;;) {
    const reply = await link.requestStack(ms);
    if (reply.state === 'idle' || Date.now() > deadline) return reply;
  }
}

function assertTopFrame(t: ExecutionContext, stack: StackFrame[], functionName: string, file = FIXTURE): void {
  t.log(formatStack(stack).join('\n'));
  t.like(stack[0], { functionName, url: pathToFileURL(file).href, ...markedLine(functionName, file) });
}

test.serial('a loop spinning in while (true) {} is reported once, naming the function, its file and line', async (t) => {
  const fixture = await startFixture(t, THRESHOLD_MS);
  const spunAt = Date.now();
  fixture.child.send({ do: 'spin' });

  const report = await fixture.nextBlocked();
  const latencyMs = Date.now() - spunAt;
  t.log(`reported after ${latencyMs} ms, blockedMs ${report.blockedMs}`);
  assertTopFrame(t, report.stack, 'spinForever');
  t.is(report.error, undefined);
  t.true(report.blockedMs > THRESHOLD_MS, `blockedMs ${report.blockedMs}`);
  t.true(latencyMs <= THRESHOLD_MS + 2000, `reported ${latencyMs} ms after the spin began`);

  // Still spinning: the stack on demand says blocked, and the episode was reported exactly once.
  const reply = await fixture.link.requestStack(5000);
  t.is(reply.state, 'blocked');
  t.true(reply.blockedMs! >= report.blockedMs, `blockedMs ${reply.blockedMs}`);
  assertTopFrame(t, reply.stack, 'spinForever');
  t.is(fixture.blocked.length, 1);
  t.deepEqual(fixture.warnings, []);
});

test.serial('each blocked episode is reported once, and the main thread runs on after the capture', async (t) => {
  const fixture = await startFixture(t, THRESHOLD_MS);
  for (let episode = 1; episode <= 2; episode++) {
    const blocked = fixture.nextBlocked();
    const done = fixture.message((received) => received.busy === 'done', `end of busy episode ${episode}`);
    fixture.child.send({ do: 'busy', ms: THRESHOLD_MS + 500 });
    assertTopFrame(t, (await blocked).stack, 'busyFor');
    // The fixture finishing its loop proves the pause was resumed.
    await done;
    t.is(fixture.blocked.length, episode);
  }
  t.deepEqual(fixture.warnings, []);
});

test.serial('on demand: an idle worker answers idle with an empty stack', async (t) => {
  const fixture = await startFixture(t, THRESHOLD_MS);
  t.deepEqual(await untilIdle(fixture.link), { state: 'idle', stack: [] });
  // Requests at the same time share one capture.
  const replies = await Promise.all([fixture.link.requestStack(2000), fixture.link.requestStack(2000)]);
  t.deepEqual(replies, [{ state: 'idle', stack: [] }, { state: 'idle', stack: [] }]);
  t.deepEqual(fixture.warnings, []);
});

const busyOnDemand = test.macro({
  async exec(t, thresholdMs: number) {
    const fixture = await startFixture(t, thresholdMs);
    const started = fixture.message((received) => received.busy === 'started', 'start of the busy loop');
    const done = fixture.message((received) => received.busy === 'done', 'end of the busy loop');
    fixture.child.send({ do: 'busy', ms: 2000 });
    await started;
    const reply = await fixture.link.requestStack(1500);
    t.is(reply.state, 'busy');
    assertTopFrame(t, reply.stack, 'busyFor');
    t.true(reply.stack.some((frame) => frame.functionName === 'listOnTimeout'), 'called from a timer');
    await done;
    t.deepEqual(await untilIdle(fixture.link), { state: 'idle', stack: [] });
    t.is(fixture.blocked.length, 0);
    t.deepEqual(fixture.warnings, []);
  },
  title: (_title, thresholdMs) => `on demand: a worker inside a 2 s busy function answers busy with that function on top (threshold ${thresholdMs} ms)`,
});
test.serial(busyOnDemand, 0);
test.serial(busyOnDemand, 10_000);

test.serial('the watchdog never keeps the worker alive, and the link closes when it exits', async (t) => {
  const fixture = await startFixture(t, THRESHOLD_MS);
  // A capture first, so that the inspector session has been used.
  t.is((await untilIdle(fixture.link)).state, 'idle');
  const closed = once(fixture.link, 'close');
  const exited = once(fixture.child, 'exit');
  fixture.child.send({ do: 'exit-when-idle' });
  const [code, signal] = await within(exited, 5000, 'exit of the idle fixture');
  t.deepEqual([code, signal], [0, null]);
  await within(closed, 1000, "link 'close'");
  t.true(fixture.link.closed);
  await t.throwsAsync(fixture.link.requestStack(1000), { code: 'ERR_CLUSTERD_WATCHDOG_CLOSED' });
});

test.serial('a TypeScript entry run through tsx is reported at its .ts line, through the source map', async (t) => {
  // tsx compiles the module onto one line; the stack must still point into the source the user wrote.
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-watchdog-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'spin.ts');
  const watchdog = new URL('../../dist/loop/watchdog.js', import.meta.url).href;
  writeFileSync(file, [
    `import { startWatchdog } from '${watchdog}';`,
    '',
    'interface Padding {',
    '  erased: number;',
    '}',
    'type Arg = Padding | null;',
    '',
    'startWatchdog({ thresholdMs: Number(process.env.WATCHDOG_THRESHOLD_MS) });',
    'function spinForever(_arg: Arg): void {',
    "  while (true) {} // spinForever's line",
    '}',
    "process.on('message', () => spinForever(null));",
    "process.send!({ fixture: 'ready' });",
    '',
  ].join('\n'));
  const fixture = await startFixture(t, THRESHOLD_MS, { file, execArgv: ['--import', 'tsx'] });
  fixture.child.send({ do: 'spin' });
  assertTopFrame(t, (await fixture.nextBlocked()).stack, 'spinForever', file);
  t.deepEqual(fixture.warnings, []);
});
