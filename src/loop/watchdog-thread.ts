// The blocked-loop watchdog, thread half: runs in a worker_thread started by startWatchdog()
// (watchdog.ts), never imported directly. It owns the pipe to the master (fd 4 by default) and talks to
// the main thread only through the heartbeat in shared memory and an inspector session, so it keeps
// working, and the stack still travels, while the main thread spins in `while (true) {}`.
//
// - Heartbeat (thresholdMs > 0): every pollMs it reads the main thread's last beat; once the beat is older
//   than thresholdMs it captures the stack and writes one `blocked` report. One report per episode: it
//   re-arms when the heartbeat moves again. A block that ends before the pause lands is not reported.
// - Requests: answers each `{"type":"stack","id"}` line with the stack and the state of the main thread.
//
// A capture: `Debugger.enable` (whose `scriptParsed` events map scriptId -> url: the frames' own `url`
// comes back empty on Node 20), `Debugger.pause`, then a one-statement probe script through
// `Runtime.evaluate`. When JavaScript is running, the pause interrupts it and the probe (if it runs first)
// sits on top of the app's frames. When the loop is idle, `Debugger.pause` only arms a break at the next
// JavaScript, which would be whatever callback comes next, maybe minutes later; the probe is that
// JavaScript, so the pause lands at once in the probe on an otherwise empty stack: that is "idle". Probe
// frames are dropped. The paused event is answered with `Debugger.resume` at once.
// Then `Debugger.disable`, once `Debugger.resumed` says the main thread has left the pause. The debugger
// is on only for the few ms of a capture, because while it is on V8 reports every script compiled (eval,
// new Function, vm) to this thread, keeps their sources, and stops at any `debugger;` statement the app
// ships: measured on Node 20 and 24, `new Function` ran about 6x slower with it on, while CPU-bound code
// showed no difference beyond run-to-run noise. The session, too, is connected only during a capture.
// A capture costs the main thread about 5 ms; the first one in a process that loaded 2,000 modules
// about 150 ms (the first Debugger.enable reports every script). Atomics.wait, unlike other native calls,
// is interruptible: the pause usually lands inside it.
//
// Positions go through the script's source map when it has one (tsx's inline maps, a compiled app's
// .js.map), as --enable-source-maps does for Error stacks: tsx's output has the whole module on line 2.
// The inspector itself applies no maps. This runs here, after the resume, at no cost to the main thread.
//
// A main thread inside one long native call (execSync, a sync fs or crypto call) cannot be paused until
// the call returns: after captureTimeoutMs the capture gives up and the report carries an empty stack and an
// `error`. Its messages, still queued, run when the call returns; the capture sees them through (pause,
// resume, disable) in the background, and the next capture waits for that.
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { Session } from 'node:inspector/promises';
import type { Debugger } from 'node:inspector';
import { SourceMap } from 'node:module';
import { Socket } from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { workerData } from 'node:worker_threads';
import { lineSplitter, parseMessage, type LoopState, type StackFrame, type WatchdogReport, type WatchdogThreadData } from './watchdog.js';
import { endOwnGroup } from '../system/group.js';

const { heartbeat, fd, thresholdMs, stallMs, pollMs, captureTimeoutMs } = workerData as WatchdogThreadData;
const beats = new BigInt64Array(heartbeat);
const PROBE_URL = 'clusterd-watchdog-probe';
const PROBE = `void 0\n//# sourceURL=${PROBE_URL}`;
/** A runaway recursion can have thousands of frames; the innermost ones tell the story. */
const MAX_FRAMES = 200;

interface Capture {
  /** The main thread's frames, innermost first; empty when it was idle. */
  frames: StackFrame[];
  /** The heartbeat as it was while the main thread was paused, and the time then (hrtime ns). */
  beat: bigint;
  at: bigint;
}

const lastBeat = (): bigint => Atomics.load(beats, 0);
const millis = (ns: bigint): number => Math.round(Number(ns) / 1e6);
const ignore = (): void => {};
const message = (error: unknown): string => (error instanceof Error ? error.message : String(error));
const notInJavaScript = `could not pause the main thread within ${captureTimeoutMs} ms (blocked inside a native call, or held paused by a debugger?)`;

const pipe = new Socket({ fd, readable: true, writable: true });
const send = (report: WatchdogReport): void => {
  if (pipe.writable) pipe.write(`${JSON.stringify(report)}\n`);
};
// The thread must never die of its own bug while the app runs: report and go on.
process.on('uncaughtException', (error) => send({ type: 'error', message: `watchdog thread: ${message(error)}` }));
process.on('unhandledRejection', (error) => send({ type: 'error', message: `watchdog thread: ${message(error)}` }));

interface Script {
  url: string;
  sourceMapURL: string;
  hash: string;
}

// Connected only while a capture runs: a session still connected when the process exits makes
// Node print "Waiting for the debugger to disconnect..." into the app's stderr.
const session = new Session();

/** How long a worker whose master died may take to exit by itself before this thread kills it. */
const ORPHAN_GRACE_MS = 500;
/** The scripts the current capture's Debugger.enable reported, by scriptId. */
const scripts = new Map<string, Script>();
let waiting: ((capture: Capture) => void) | null = null;

session.on('Debugger.scriptParsed', ({ params: { scriptId, url, sourceMapURL = '', hash } }) => {
  scripts.set(scriptId, { url, sourceMapURL, hash });
});
session.on('Debugger.paused', ({ params }) => {
  const resolve = waiting;
  waiting = null;
  const beat = lastBeat();
  const at = process.hrtime.bigint();
  // Only a pause this capture waits for is resumed. Debugger.enable replays a pause someone else holds
  // (a developer's debugger at a breakpoint): that one is theirs. One that starts as a capture ends (a
  // `debugger;` statement) is let go by the Debugger.disable that follows, as no agent accepts it.
  if (resolve === null) return;
  const raw = params.callFrames.map(({ functionName, url, location }) => ({ functionName, url, location }));
  session.post('Debugger.resume').catch(ignore);
  resolve({ frames: toFrames(raw), beat, at });
});

function toFrames(callFrames: Array<Pick<Debugger.CallFrame, 'functionName' | 'url' | 'location'>>): StackFrame[] {
  // The last probe frame: a probe can still be on the stack under the next one, when the next capture's
  // messages are dispatched from an interrupt taken as the previous probe returns.
  const probe = callFrames.findLastIndex(({ url, location }) => (scripts.get(location.scriptId)?.url || url) === PROBE_URL);
  return callFrames.slice(probe + 1, probe + 1 + MAX_FRAMES).map(({ functionName, url, location }) => {
    const script = scripts.get(location.scriptId);
    const line = location.lineNumber;
    const column = location.columnNumber ?? 0;
    const original = script === undefined ? null : originalPosition(script, line, column);
    return original === null
      ? { functionName, url: script?.url || url || '', line: line + 1, column: column + 1 }
      : { functionName, ...original };
  });
}

/** Parsed source maps by script hash and URL; null where a script's map could not be read. */
const sourceMaps = new Map<string, { map: SourceMap; base: string } | null>();
const MAX_SOURCE_MAPS = 64;

/** Maps a 0-based generated position to the original source's URL and 1-based line and column. */
function originalPosition(script: Script, line: number, column: number): { url: string; line: number; column: number } | null {
  if (script.sourceMapURL === '') return null;
  const key = `${script.hash} ${script.url}`;
  let cached = sourceMaps.get(key);
  if (cached === undefined) {
    cached = loadSourceMap(script);
    if (sourceMaps.size >= MAX_SOURCE_MAPS) sourceMaps.delete(sourceMaps.keys().next().value!);
    sourceMaps.set(key, cached);
  }
  if (cached === null) return null;
  const entry = cached.map.findEntry(line, column) as Partial<{ originalSource: string; originalLine: number; originalColumn: number }>;
  if (entry.originalSource === undefined || entry.originalLine === undefined || entry.originalColumn === undefined) return null;
  const root = (cached.map.payload as { sourceRoot?: unknown }).sourceRoot;
  return {
    url: sourceUrl(`${typeof root === 'string' ? root : ''}${entry.originalSource}`, cached.base),
    line: entry.originalLine + 1,
    column: entry.originalColumn + 1,
  };
}

function loadSourceMap({ url, sourceMapURL }: Script): { map: SourceMap; base: string } | null {
  try {
    if (sourceMapURL.startsWith('data:')) {
      const comma = sourceMapURL.indexOf(',');
      const data = sourceMapURL.slice(comma + 1);
      const text = sourceMapURL.slice(0, comma).endsWith(';base64') ? Buffer.from(data, 'base64').toString('utf8') : decodeURIComponent(data);
      return { map: new SourceMap(JSON.parse(text) as never), base: url };
    }
    const location = new URL(sourceMapURL, url);
    if (location.protocol !== 'file:') return null;
    return { map: new SourceMap(JSON.parse(readFileSync(fileURLToPath(location), 'utf8')) as never), base: location.href };
  } catch {
    return null;
  }
}

/** A source map's `sources` entry as a URL, like every other frame's: absolute paths become file: URLs. */
function sourceUrl(source: string, base: string): string {
  if (source.startsWith('/')) return pathToFileURL(source).href;
  try {
    return new URL(source, base).href;
  } catch {
    return source;
  }
}

/** Settles once the main thread has been through every message of the previous capture. */
let settled: Promise<unknown> = Promise.resolve();
let inFlight: Promise<Capture | null> | null = null;

/** Takes the main thread's stack, sharing a capture already under way. */
function captureStack(): Promise<Capture | null> {
  inFlight ??= capture().finally(() => {
    inFlight = null;
  });
  return inFlight;
}

/** Takes the main thread's stack; null when it did not reach JavaScript within captureTimeoutMs. */
async function capture(): Promise<Capture | null> {
  let gaveUp = false;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<null>((resolve) => {
    timer = setTimeout(() => {
      gaveUp = true;
      resolve(null);
    }, captureTimeoutMs);
  });
  // The attempt runs to its end even after the deadline (it needs the main thread, which may be stuck in
  // a native call), and the next capture starts only after it: messages of a new capture that reached the
  // main thread while it was still paused would find the debugger paused, so that Debugger.pause would do
  // nothing and Debugger.enable would replay the old pause.
  const attempt = settled.then(async (): Promise<Capture | null> => {
    if (gaveUp) return null;
    try {
      session.connectToMainThread();
      scripts.clear();
      // Every script's scriptParsed arrives before this resolves.
      await session.post('Debugger.enable');
      const resumed = once(session, 'Debugger.resumed');
      resumed.catch(ignore);
      const paused = new Promise<Capture>((resolve) => {
        waiting = resolve;
      });
      session.post('Debugger.pause').catch(ignore);
      // The probe's answer comes after the paused event, whichever way the pause lands; alone, it means
      // the pause did not land (another debugger holds the main thread paused, say).
      const probed = session.post('Runtime.evaluate', { expression: PROBE, silent: true }).then(() => null, () => null);
      const taken = await Promise.race([paused, probed]);
      // Sent once the main thread has left the pause, which the handler has asked for.
      if (taken !== null) await resumed;
      return taken;
    } finally {
      waiting = null;
      await session.post('Debugger.disable').catch(ignore);
      session.disconnect();
    }
  });
  settled = attempt.catch(ignore);
  try {
    return await Promise.race([attempt, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** The beat whose silence was already reported, until the heartbeat moves again. */
let reported: bigint | null = null;
let checking = false;

async function checkHeartbeat(): Promise<void> {
  const beat = lastBeat();
  if (reported !== null) {
    if (beat === reported) return;
    reported = null;
  }
  if (checking || millis(process.hrtime.bigint() - beat) <= thresholdMs) return;
  checking = true;
  try {
    const taken = await captureStack();
    if (taken === null) {
      if (lastBeat() !== beat) return;
      reported = beat;
      send({ type: 'blocked', blockedMs: millis(process.hrtime.bigint() - beat), stack: [], error: notInJavaScript });
    } else if (taken.beat === beat) {
      reported = beat;
      send({ type: 'blocked', blockedMs: millis(taken.at - beat), stack: taken.frames });
    }
    // Otherwise it beat again before the pause landed: that episode is over and its stack is gone.
  } catch (error) {
    send({ type: 'error', message: `watchdog capture failed: ${message(error)}` });
  } finally {
    checking = false;
  }
}

async function answerStack(id: number): Promise<void> {
  try {
    const taken = await captureStack();
    const silentMs = millis((taken?.at ?? process.hrtime.bigint()) - (taken?.beat ?? lastBeat()));
    const blocked = thresholdMs > 0 && silentMs > thresholdMs;
    const state: LoopState = taken !== null && taken.frames.length === 0 ? 'idle' : blocked ? 'blocked' : 'busy';
    send({
      type: 'stack',
      id,
      state,
      stack: taken?.frames ?? [],
      ...(state === 'blocked' ? { blockedMs: silentMs } : {}),
      ...(taken === null ? { error: notInJavaScript } : {}),
    });
  } catch (error) {
    send({ type: 'error', id, message: `watchdog capture failed: ${message(error)}` });
  }
}

function onLine(line: string): void {
  const request = parseMessage(line);
  if (request?.type === 'stack' && Number.isSafeInteger(request.id)) {
    void answerStack(request.id as number);
  } else {
    send({ type: 'error', message: `watchdog: unknown request ${JSON.stringify(line.slice(0, 200))}` });
  }
}

let stalled = false;

/** With stallMs: says at once when the loop goes silent past stallMs, and when it beats again. */
function checkStall(): void {
  const silentMs = millis(process.hrtime.bigint() - lastBeat());
  if (!stalled && silentMs > stallMs) {
    stalled = true;
    send({ type: 'stall', silentMs });
  } else if (stalled && silentMs <= stallMs) {
    stalled = false;
    send({ type: 'resume' });
  }
}

const poll =
  thresholdMs > 0 || stallMs > 0
    ? setInterval(() => {
        if (stallMs > 0) checkStall();
        if (thresholdMs > 0) void checkHeartbeat();
      }, pollMs)
    : null;
pipe.setEncoding('utf8');
pipe.on('data', lineSplitter(onLine, { onOverflow: () => send({ type: 'error', message: 'watchdog: request line too long, dropped' }) }));
// EPIPE / ECONNRESET: the master is gone; 'close' follows.
pipe.on('error', ignore);
// Nobody left to report to: let the thread end (the main thread's heartbeat stops with it).
pipe.on('close', () => {
  if (poll !== null) clearInterval(poll);
  session.disconnect();
  // The master is gone. A healthy main thread sees its IPC channel close and exits; one stuck in a
  // busy loop never will, and would hold its port as an orphan. This thread still runs: if the
  // process outlives the grace, it ends it. The timer stays ref'd, or this thread's loop would end
  // before it fires; the thread itself is unref'd, so a process that exits first is not held.
  setTimeout(() => {
    // The app's children go with it (the worker leads their process group).
    endOwnGroup();
    process.kill(process.pid, 'SIGKILL');
  }, ORPHAN_GRACE_MS);
});
send({ type: 'ready', pid: process.pid, thresholdMs });
