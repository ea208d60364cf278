// The stack probe's answer comes from inside the worker (src/loop/capture.ts): parsed, and clipped.
import test, { type ExecutionContext } from 'ava';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runInThisContext } from 'node:vm';
import { Worker } from 'node:worker_threads';
import { MAX_FUNCTION_CHARS, MAX_URL_CHARS, StackCapturer, type InspectorSession } from '../../src/loop/capture.js';
import { MAX_SOURCE_BYTES } from '../../src/loop/function-entry.js';

/** A session whose Runtime.evaluate answers with `sites`, as the probe would. */
function answering(sites: unknown[]): InspectorSession {
  return { post: () => Promise.resolve({ result: { value: [12.5, sites, null] } }) };
}

test('names and URLs past their limit are clipped: the master keeps them in every blocked site and stack', async (t) => {
  const capturer = new StackCapturer(answering([['f'.repeat(50_000), `node:${'u'.repeat(50_000)}`, 1, 2, null], ['main', 'node:internal/main', 3, 4, null]]), { timeoutMs: 1000 });
  const capture = await capturer.capture();
  const [huge, plain] = capture!.frames;
  t.is(huge!.functionName.length, MAX_FUNCTION_CHARS);
  t.is(huge!.url.length, MAX_URL_CHARS);
  t.true(huge!.functionName.endsWith('…'));
  t.like(plain, { functionName: 'main', url: 'node:internal/main', line: 3, column: 4 });
  t.is(capture!.at, 12.5);
});

test("a source that cannot be read in time (a stuck mount) leaves the column's word: the capture still ends, ENTRY_CHECK_MS after the answer", async (t) => {
  t.timeout(10_000);
  const session: InspectorSession = { post: () => Promise.resolve({ result: { value: [12.5, [['spinAtAsyncColumn', '/srv/app.js', 1, 20, null]], [19, 19, 'a'.repeat(64)]] } }) };
  const asked: unknown[] = [];
  const entryCheck = (url: string, clue: unknown) => {
    asked.push([url, clue]);
    return new Promise<boolean>(() => {});
  };
  const capture = await new StackCapturer(session, { timeoutMs: 200, entryCheck }).capture();
  t.deepEqual(asked, [['file:///srv/app.js', { into: 19, position: 19, hash: 'a'.repeat(64) }]]);
  t.true(capture?.atEntry);
  t.is(capture?.frames[0]?.functionName, 'spinAtAsyncColumn');
});

test('an answer that is not a stack is refused', async (t) => {
  const capturer = new StackCapturer(answering([['f', 'u', -1, 2, null]]), { timeoutMs: 1000 });
  await t.throwsAsync(capturer.capture(), { message: /not a stack/ });
});

/**
 * A StackCapturer of this process's main thread: a worker thread forwards its commands to an inspector
 * session connected to the main thread once the main thread sets flags[2], sets flags[0] once it has
 * sent one, flags[1] once it has the answer. The probe then runs on whatever the main thread is doing,
 * as in a clusterd worker.
 */
async function mainThreadCapturer(t: ExecutionContext): Promise<{ capturer: StackCapturer; session: InspectorSession; flags: Int32Array }> {
  const flags = new Int32Array(new SharedArrayBuffer(12));
  const forwarder = new Worker(
    `const { Session } = require('node:inspector');
    const { parentPort, workerData: flags } = require('node:worker_threads');
    const session = new Session();
    session.connectToMainThread();
    parentPort.on('message', ({ method, params }) => {
      while (Atomics.load(flags, 2) === 0);
      session.post(method, params, (error, result) => {
        Atomics.store(flags, 1, 1);
        parentPort.postMessage(error ? { error: String(error) } : { result });
      });
      Atomics.store(flags, 0, 1);
    });
    parentPort.postMessage('connected');`,
    { eval: true, workerData: flags },
  );
  t.teardown(() => forwarder.terminate());
  await once(forwarder, 'message');
  const session: InspectorSession = {
    post(method, params) {
      flags.fill(0);
      const reply = once(forwarder, 'message');
      forwarder.postMessage({ method, params });
      return reply.then(([answer]) => {
        const { error, result } = answer as { error?: string; result?: unknown };
        if (error !== undefined) throw new Error(error);
        return result;
      });
    },
  };
  return { capturer: new StackCapturer(session, { timeoutMs: 10_000 }), session, flags };
}

interface FirstLines {
  entries: Record<string, (text: string) => unknown>;
  spins: Record<string, () => void>;
}

/** test/loop/fixtures/first-lines.js, run as written (not through tsx, which reprints a file's code). */
function firstLines(flags: Int32Array): FirstLines {
  const file = fileURLToPath(new URL('fixtures/first-lines.js', import.meta.url));
  const make = runInThisContext(readFileSync(file, 'utf8'), { filename: file }) as (flags: Int32Array) => FirstLines;
  return make(flags);
}

/** The name V8 gives each entry's function. */
const entryNames: Record<string, string> = {
  namedNext: 'namedNext',
  arrowNext: 'arrowNext',
  asyncArrowNext: 'asyncArrowNext',
  asyncNext: 'asyncNext',
  generatorNext: 'generatorNext',
  methodNext: 'methodNext',
  getterNext: 'get getterNext',
  Next: 'Next',
  staticMethodNext: 'methodNext',
};

// The tests that capture this process's own main thread block it (a parse, a spin): one at a time, or
// one's block runs out another's entry check (ENTRY_CHECK_MS) and the column's word stands for it.
test.serial('a probe held by a JSON.parse runs at the entry of the function called next, whatever its kind: that frame is atEntry', async (t) => {
  const { capturer, flags } = await mainThreadCapturer(t);
  const lines = firstLines(flags);
  // A string that takes a while to parse, so that the probe is sent during the parse.
  const text = JSON.stringify(Array.from({ length: 300_000 }, (_, i) => ({ id: i, name: `item${i}` })));
  for (const [label, entry] of Object.entries(lines.entries)) {
    for (let tries = 1; ; tries++) {
      const pending = capturer.capture();
      const called = entry(text);
      const capture = await pending;
      if (called === false && tries < 20) continue;
      t.true(called !== false, `${label}: the probe was never sent before the parse ended`);
      t.is(capture?.frames[0]?.functionName, entryNames[label], label);
      t.true(capture?.atEntry, `${label}: ${JSON.stringify(capture?.frames.slice(0, 2))}`);
      break;
    }
  }
});

/** The name V8 gives each spin's function, where it is not the spin's. */
const spinNames: Record<string, string> = { oneLineFunction: 'spinNamed', atAsyncColumn: 'spinAtAsyncColumn' };

test.serial("a loop on its function's first line is not that function's entry: the spinning frame is the block's", async (t) => {
  // `(req, res) => { for (...` takes the interrupt 16 columns in, at the loop, which read as the
  // arrow's entry when any column up to the longest head (`async function* ` and the name) did.
  // spinAtAsyncColumn's loop is `async function spinAtAsyncColumn` long into its line: exactly where an
  // async function's entry would be, which the column alone took for one.
  const { capturer, flags } = await mainThreadCapturer(t);
  const lines = firstLines(flags);
  for (const [name, spin] of Object.entries(lines.spins)) {
    const pending = capturer.capture();
    spin();
    const capture = await pending;
    t.is(capture?.frames[0]?.functionName, spinNames[name] ?? name);
    t.false(capture?.atEntry, `${name}: ${JSON.stringify(capture?.frames.slice(0, 2))}`);
  }
});

test.serial("the probe does not have V8 hash a script where the frame is past the largest the master reads: that costs the blocked worker", async (t) => {
  const { session, flags } = await mainThreadCapturer(t);
  const replies: unknown[] = [];
  const recording: InspectorSession = {
    async post(method, params) {
      const reply = await session.post(method, params);
      replies.push(reply);
      return reply;
    },
  };
  // The spin stands as far into its line as an async function's `(` would (the probe then asks for
  // the hash, as in the test above), past MAX_SOURCE_BYTES of comment.
  const source = `//${' '.repeat(MAX_SOURCE_BYTES)}\n(flags) => function spinAtAsyncColumn(x) { for (flags[2] = 1; flags[1] === 0; ); }`;
  const spin = (runInThisContext(source, { filename: '/clusterd-test/huge-bundle.js' }) as (flags: Int32Array) => () => void)(flags);
  const pending = new StackCapturer(recording, { timeoutMs: 10_000 }).capture();
  spin();
  const capture = await pending;
  t.is(capture?.frames[0]?.functionName, 'spinAtAsyncColumn');
  const clue = (replies[0] as { result: { value: [unknown, unknown, [number, number, string | null] | null] } }).result.value[2];
  t.is(clue?.[0], 'async function spinAtAsyncColumn'.length);
  t.true(clue![1] > MAX_SOURCE_BYTES);
  t.is(clue?.[2], null);
});
