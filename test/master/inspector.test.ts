// Issue 12: a worker's heartbeat and its inspector, against really forked processes, without a
// master: the fixture beats on fd 4 with the compiled heartbeat (dist/, so `npm run build` first),
// and this side watches it with a LoopWatch and takes its stack with a WorkerInspector, as the master
// does. Serial: a spinning fixture takes a whole core, and the thresholds are a few hundred ms.
import test, { type ExecutionContext } from 'ava';
import { buildSync } from 'esbuild';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { formatStack } from '../../src/loop/capture.js';
import type { StackFrame } from '../../src/loop/types.js';
import { InspectorClient } from '../../src/master/inspector-client.js';
import { inspectorArgs, WorkerInspector } from '../../src/master/inspector.js';
import { LoopWatch } from '../../src/master/loop-watch.js';
import { waitFor } from '../helpers/cluster.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/heartbeat-app.mjs', import.meta.url));
const THRESHOLD_MS = 300;

/** Where the line marked `<name>'s line` is in file, as the inspector reports it (1-based). */
function markedLine(name: string, file = FIXTURE): { line: number; column: number } {
  const lines = readFileSync(file, 'utf8').split('\n');
  const index = lines.findIndex((text) => text.includes(`${name}'s line`));
  return { line: index + 1, column: lines[index]!.search(/\S/) + 1 };
}

interface Fixture {
  child: ChildProcess;
  watch: LoopWatch;
  inspector: WorkerInspector;
  /** stderr lines the inspector did not claim (what the worker's log would show). */
  stderr: string[];
  /** 'silent' events: [threshold, episode]. */
  silences: Array<[number, number]>;
  message(match: (message: Record<string, unknown>) => boolean, what: string): Promise<Record<string, unknown>>;
  nextSilence(): Promise<[number, number]>;
}

/** held: where the inspector's address line and the one after it go instead of to the inspector (lines that come late). */
async function startFixture(t: ExecutionContext, { file = FIXTURE, execArgv = [] as string[], held = undefined as string[] | undefined } = {}): Promise<Fixture> {
  const child = fork(file, [], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc', 'pipe'],
    execArgv: [...inspectorArgs(execArgv), ...execArgv],
    // Where `--import tsx` resolves from.
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const inspector = new WorkerInspector(child.pid!);
  const stderr: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (line) => {
    if (held && /^(Debugger listening on |For help, see: )/.test(line)) held.push(line);
    else if (!inspector.intercept(line)) stderr.push(line);
  });
  child.stdout!.resume();
  const watch = new LoopWatch(child.stdio[4] as Readable, { stallMs: 0, thresholds: [THRESHOLD_MS] });
  const silences: Array<[number, number]> = [];
  const silenceWaiters: Array<(silence: [number, number]) => void> = [];
  watch.on('silent', (threshold: number, episode: number) => {
    silences.push([threshold, episode]);
    silenceWaiters.shift()?.([threshold, episode]);
  });
  const message: Fixture['message'] = (match, what) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${what} within 10 s`)), 10_000);
      const listener = (received: Record<string, unknown>): void => {
        if (!match(received)) return;
        clearTimeout(timer);
        child.off('message', listener);
        resolve(received);
      };
      child.on('message', listener);
    });
  await message((received) => received.fixture === 'ready', 'ready fixture');
  return {
    child,
    watch,
    inspector,
    stderr,
    silences,
    message,
    nextSilence: () => new Promise((resolve) => silenceWaiters.push(resolve)),
  };
}

function assertTopFrame(t: ExecutionContext, stack: readonly StackFrame[] | null, functionName: string, file = FIXTURE): void {
  t.log(formatStack(stack ?? []).join('\n'));
  // The app's innermost frame. Node's own may sit above it: once in CI (Node 20) the probe ran from
  // inside an `emit` that another interrupt had just entered on top of the spin (node:events, at the
  // function's first line); the frames below were the spin's, as always.
  const top = stack?.find((frame) => !frame.url.startsWith('node:'));
  t.like(top, { functionName, url: pathToFileURL(file).href, ...markedLine(functionName, file) });
}

test.serial('a loop spinning in while (true) {} goes silent once, and its stack names the function, file and line', async (t) => {
  const fixture = await startFixture(t);
  const spunAt = Date.now();
  const silence = fixture.nextSilence();
  fixture.child.send({ do: 'spin' });
  const [threshold, episode] = await silence;
  t.is(threshold, THRESHOLD_MS);
  // The silence counts from the last beat before the spin: at most one beat period (25 ms) before it.
  t.true(Date.now() - spunAt >= THRESHOLD_MS - 25, `silent ${Date.now() - spunAt} ms after the spin was asked for`);
  const frames = await fixture.inspector.capture();
  assertTopFrame(t, frames, 'spinForever');
  t.true(fixture.watch.current(episode), 'still the same silence');
  t.true(fixture.watch.silentMs > THRESHOLD_MS);
  // Still spinning: one silence per episode, and a second capture sees the same.
  assertTopFrame(t, await fixture.inspector.capture(), 'spinForever');
  t.is(fixture.silences.length, 1);
  // The inspector's own lines never reached the log.
  t.deepEqual(fixture.stderr, []);
});

test.serial('each silence is its own episode, and the main thread runs on after a capture', async (t) => {
  const fixture = await startFixture(t);
  for (let round = 1; round <= 2; round++) {
    const silence = fixture.nextSilence();
    const done = fixture.message((received) => received.busy === 'done', `end of busy round ${round}`);
    fixture.child.send({ do: 'busy', ms: THRESHOLD_MS + 700 });
    const [, episode] = await silence;
    assertTopFrame(t, await fixture.inspector.capture(), 'busyFor');
    // The fixture finishing its loop proves the pause was resumed; its next beat ends the episode.
    await done;
    await fixture.watch.lasted(episode);
    t.is(fixture.silences.length, round);
    if (round === 2) t.false(fixture.watch.current(episode) && fixture.watch.silentMs > THRESHOLD_MS);
  }
  t.deepEqual(fixture.stderr, []);
});

test.serial('an idle loop answers with an empty stack, and captures at the same time share one', async (t) => {
  const fixture = await startFixture(t);
  // An idle worker still runs a little JavaScript now and then (its heartbeat): ask until idle.
  let frames: StackFrame[] | null = null;
  for (let attempt = 0; attempt < 20 && (frames === null || frames.length > 0); attempt++) frames = await fixture.inspector.capture();
  t.deepEqual(frames, []);
  const shared = await Promise.all([fixture.inspector.capture(), fixture.inspector.capture()]);
  t.is(shared[0], shared[1]);
});

test.serial("the inspector's address coming after the activation gave up (a starved machine) is still taken: the next capture works", async (t) => {
  const held: string[] = [];
  const fixture = await startFixture(t, { held });
  const error = await t.throwsAsync(fixture.inspector.capture());
  t.regex(error!.message, /no inspector came up within \d+ ms of SIGUSR1/);
  await waitFor(() => (held.length === 2 ? true : null), { what: "the inspector's address line", timeoutMs: 10_000 });
  // Node printed them once; another SIGUSR1 finds the inspector up and prints nothing.
  t.deepEqual(held.map((line) => fixture.inspector.intercept(line)), [true, true], 'the late lines are the inspector\'s');
  const frames = await fixture.inspector.capture();
  t.true(Array.isArray(frames));
  t.deepEqual(fixture.stderr, []);
});

test.serial('a loop running short callbacks back to back (a loaded server): every capture lands', async (t) => {
  const fixture = await startFixture(t);
  fixture.child.send({ do: 'churn', ms: 60_000 });
  // There the probe answers before the pause lands (both come from one interrupt): the capture must wait for the pause.
  for (let capture = 0; capture < 25; capture++) {
    const frames = await fixture.inspector.capture();
    t.not(frames, null, `capture ${capture + 1} of 25 did not land`);
  }
});

test.serial('a busy function on demand: on top of a timer callback', async (t) => {
  const fixture = await startFixture(t);
  const started = fixture.message((received) => received.busy === 'started', 'start of the busy loop');
  const done = fixture.message((received) => received.busy === 'done', 'end of the busy loop');
  fixture.child.send({ do: 'busy', ms: 1500 });
  await started;
  const frames = await fixture.inspector.capture();
  assertTopFrame(t, frames, 'busyFor');
  t.true(frames!.some((frame) => frame.functionName === 'listOnTimeout'), 'called from a timer');
  await done;
});

test.serial('a CPU profile of a busy worker shows its busy function', async (t) => {
  const fixture = await startFixture(t);
  const done = fixture.message((received) => received.busy === 'done', 'end of the busy loop');
  fixture.child.send({ do: 'busy', ms: 1200 });
  const profile = await fixture.inspector.profile(800, 1000);
  await done;
  // busyFor was optimized, and inlined into the timer callback that calls it, before the profile
  // started: V8 keeps where inlined code came from only for code compiled while a profiler runs, so
  // its samples may be charged to that callback. Either way they are in the fixture's own code.
  const busy = profile.nodes.filter((node) => node.callFrame.url.endsWith('/heartbeat-app.mjs') && ['busyFor', ''].includes(node.callFrame.functionName));
  const hits = busy.reduce((sum, node) => sum + (node.hitCount ?? 0), 0);
  t.true(hits > 100, `${hits} samples in busyFor or its caller: ${JSON.stringify(profile.nodes.filter((node) => (node.hitCount ?? 0) > 0).map((node) => [node.callFrame.functionName, node.callFrame.url, node.hitCount]))}`);
  await t.throwsAsync(Promise.all([fixture.inspector.profile(200), fixture.inspector.profile(200)]), { code: 'ERR_CLUSTERD_BUSY' });
});

test.serial("a profile whose worker dies fails as the inspector's failure, which the master can explain by the exit", async (t) => {
  const fixture = await startFixture(t);
  // SIGKILL: no "Waiting for the debugger" line comes first, the connection just closes.
  const attached = new Promise<void>((resolve) => {
    createInterface({ input: fixture.child.stderr! }).on('line', (line) => line === 'Debugger attached.' && resolve());
  });
  const profiling = fixture.inspector.profile(5000);
  profiling.catch(() => {});
  await attached;
  fixture.child.kill('SIGKILL');
  await t.throwsAsync(profiling, { code: 'ERR_CLUSTERD_INSPECTOR', message: /^the inspector of pid \d+ is not available: / });
});

test.serial('neither the heartbeat nor a past capture keeps the worker alive; the watch closes when it exits', async (t) => {
  const fixture = await startFixture(t);
  await fixture.inspector.capture();
  const closed = once(fixture.watch, 'close');
  const exited = once(fixture.child, 'exit');
  fixture.child.send({ do: 'exit-when-idle' });
  const [code, signal] = (await Promise.race([exited, new Promise((_, reject) => setTimeout(() => reject(new Error('no exit within 5 s')), 5000))])) as [number, string];
  t.deepEqual([code, signal], [0, null]);
  await closed;
  t.true(fixture.watch.closed);
});

/** A TypeScript app that spins in spinForever when told to, in a scratch folder: its path. */
function spinningTypeScript(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-inspector-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'spin.ts');
  const heartbeat = new URL('../../dist/loop/heartbeat.js', import.meta.url).href;
  writeFileSync(
    file,
    [
      `import { startHeartbeat } from '${heartbeat}';`,
      '',
      'interface Padding {',
      '  erased: number;',
      '}',
      'type Arg = Padding | null;',
      '',
      'startHeartbeat({ beatMs: 25 });',
      'function spinForever(_arg: Arg): void {',
      "  while (true) {} // spinForever's line",
      '}',
      "process.on('message', () => spinForever(null));",
      "process.send!({ fixture: 'ready' });",
      '',
    ].join('\n'),
  );
  return file;
}

async function spinAndCapture(fixture: Fixture): Promise<StackFrame[] | null> {
  const silence = fixture.nextSilence();
  fixture.child.send({ do: 'spin' });
  await silence;
  return fixture.inspector.capture();
}

test.serial('a TypeScript entry run through tsx is captured at its .ts line, through the source map', async (t) => {
  // tsx compiles the module onto one line; the stack must still point into the source the user wrote.
  const file = spinningTypeScript(t);
  const fixture = await startFixture(t, { file, execArgv: ['--import', 'tsx'] });
  assertTopFrame(t, await spinAndCapture(fixture), 'spinForever', file);
});

test.serial('a compiled app with a .js.map beside it is captured at its source line, without --enable-source-maps', async (t) => {
  const source = spinningTypeScript(t);
  const compiled = source.replace(/\.ts$/, '.mjs');
  // Squeezed onto a few lines, as a build step leaves it, with `//# sourceMappingURL=spin.mjs.map`.
  buildSync({ entryPoints: [source], outfile: compiled, format: 'esm', platform: 'node', sourcemap: true, minifyWhitespace: true, logLevel: 'silent' });
  t.regex(readFileSync(compiled, 'utf8'), /\/\/# sourceMappingURL=spin\.mjs\.map\s*$/);
  const fixture = await startFixture(t, { file: compiled });
  assertTopFrame(t, await spinAndCapture(fixture), 'spinForever', source);
});

test.serial("an app that freezes Error gets one line saying the stack could not be read, and the worker runs on", async (t) => {
  const fixture = await startFixture(t, { execArgv: ['--import', 'data:text/javascript,Object.freeze(Error)'] });
  await t.throwsAsync(spinAndCapture(fixture), { code: 'ERR_CLUSTERD_INSPECTOR', message: /^the worker answered the stack probe with something that is not a stack/ });
  t.is(fixture.child.exitCode, null);
});

test("whatever the worker's inspector answers, the master goes on: a malformed message ends the connection and fails the command", async (t) => {
  // The app prints the address the master connects to, so the other end may be anything it likes.
  const { WebSocketServer } = await import('ws');
  for (const answer of ['null', '[]', '"text"', '{"method":"Debugger.paused","params":null}', '{"id":1,"error":"not an object"}', 'not json']) {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(server, 'listening');
    server.on('connection', (socket) => socket.on('message', () => socket.send(answer)));
    const { port } = server.address() as { port: number };
    const client = await InspectorClient.connect(`ws://127.0.0.1:${port}/00000000-0000-4000-8000-000000000000`, 2000);
    // A listener that reads what a real inspector would send must not be what breaks.
    client.on('Debugger.paused', ({ params }: { params: { callFrames: unknown[] } }) => params.callFrames.length);
    const result = await client.post('Runtime.evaluate', { expression: '1' }).then(
      (value) => ({ value }),
      (error: Error) => ({ error: error.message }),
    );
    t.log(answer, JSON.stringify(result));
    if (answer.startsWith('{"id":1')) t.deepEqual(result, { error: 'inspector error' });
    else t.regex((result as { error: string }).error, /malformed message/, answer);
    client.close();
    server.close();
  }
});

test("an inspector that never answers: the command fails after the post timeout, and the connection closes", async (t) => {
  const { WebSocketServer } = await import('ws');
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  t.teardown(() => server.close());
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const client = await InspectorClient.connect(`ws://127.0.0.1:${port}/00000000-0000-4000-8000-000000000000`, 2000, 200);
  await t.throwsAsync(client.post('Profiler.stop'), { message: "the worker's inspector did not answer Profiler.stop within 0.2 s" });
  t.false(client.open);
});
