// The blocked-loop watchdog, main-thread half, and the protocol it speaks to the master on fd 4.
//
// A worker stuck in `while (true) {}` can answer neither IPC nor signals, so the stack has to be taken and
// shipped by another thread. This file beats a heartbeat into a SharedArrayBuffer from an unref'd timer
// and starts the watchdog thread (watchdog-thread.ts), which owns the extra stdio pipe to the master,
// watches the heartbeat, and captures this thread's JavaScript stack through the inspector
// (`Session.connectToMainThread()` + `Debugger.pause`) when the loop stops beating or the master asks.
//
// Entry point, for the worker preload (once per process, before the app's entry runs):
//
//     import { startWatchdog } from '../loop/watchdog.js';
//     const watchdog = startWatchdog({ fd: 4, thresholdMs: settings.watchdogMs });
//     // optional, on shutdown: await watchdog.stop();  (it never keeps the process alive anyway)
//
// It throws a RangeError for a bad option or when fd 4 is not a pipe (a fork without the fifth stdio
// entry), and Node's own error where no worker_thread may start (--permission without --allow-worker):
// catch, warn, and run the worker without a watchdog. The thread costs about 12 MB of RSS on Node 20 and
// 20 MB on Node 24; the main thread pays one unref'd timer tick per heartbeat, and a few ms per capture
// (see watchdog-thread.ts).
//
// The master forks with stdio ['ignore', 'pipe', 'pipe', 'ipc', 'pipe'] and wraps `child.stdio[4]` in a
// WatchdogLink (src/master/watchdog-link.ts). The pipe carries UTF-8 JSON, one message per '\n'-ended line:
//
//   master -> worker   {"type":"stack","id":N}                       take the stack now (any state)
//   worker -> master   {"type":"ready","pid":P,"thresholdMs":T}      once, when the thread is listening
//                      {"type":"blocked","blockedMs":N,"stack":[F],"error"?:"..."}  once per blocked episode
//                      {"type":"stack","id":N,"state":S,"stack":[F],"blockedMs"?:N,"error"?:"..."}
//                      {"type":"error","message":"...","id"?:N}      the thread's own failures
//   F = {"functionName":"spinForever","url":"file:///app/server.js","line":27,"column":5} (1-based, mapped
//   through the script's source map when it has one), innermost frame first, at most 200;
//   S = "idle" | "busy" | "blocked". blockedMs is the time since the last heartbeat when the stack was taken,
//   so it exceeds the real block by up to heartbeatMs. A blocked report is only sent while the loop is still
//   blocked when the pause lands; the master decides what to do with it (replace the worker, or ignore it
//   while the worker is still booting: a long synchronous start-up is an episode too, reported once).
//   `error` (with an empty stack): the main thread could not be paused within captureTimeoutMs.
import { fstatSync } from 'node:fs';
import { Worker } from 'node:worker_threads';

/** One JavaScript frame of the main thread; `line` and `column` count from 1. `url` may be '' (eval). */
export interface StackFrame {
  functionName: string;
  url: string;
  line: number;
  column: number;
}

/**
 * What the main thread was doing when its stack was taken: `idle` waiting in the event loop (no JS on the
 * stack), `busy` running JavaScript, `blocked` running JavaScript with no heartbeat for over the threshold.
 */
export type LoopState = 'idle' | 'busy' | 'blocked';

/** master -> worker. */
export interface StackRequest {
  type: 'stack';
  id: number;
}

/** worker -> master. */
export type WatchdogReport =
  | { type: 'ready'; pid: number; thresholdMs: number }
  | { type: 'blocked'; blockedMs: number; stack: StackFrame[]; error?: string }
  | { type: 'stack'; id: number; state: LoopState; stack: StackFrame[]; blockedMs?: number; error?: string }
  | { type: 'error'; message: string; id?: number }
  /** With stallMs: the loop has not beaten for longer than stallMs (sent once), then beats again. */
  | { type: 'stall'; silentMs: number }
  | { type: 'resume' };

/** What startWatchdog hands the thread as workerData. */
export interface WatchdogThreadData {
  /** 8 bytes: BigInt64 process.hrtime.bigint() of the last beat (a clock shared by all threads). */
  heartbeat: SharedArrayBuffer;
  fd: number;
  thresholdMs: number;
  /** Report a stall (and its end) past this silence, in ms; 0: never. */
  stallMs: number;
  /** How often the thread looks at the heartbeat. */
  pollMs: number;
  /** How long a capture may wait for the main thread to reach JavaScript. */
  captureTimeoutMs: number;
}

export interface WatchdogOptions {
  /** The worker's end of the pipe to the master (the fork's fifth stdio entry). Default 4. */
  fd?: number;
  /** Report a loop that has not beaten for longer than this, in ms (10 or more); 0 turns the heartbeat off. */
  thresholdMs: number;
  /**
   * Heartbeat period in ms, below thresholdMs; default a quarter of thresholdMs, from 2 to 250. A blocked
   * report's blockedMs counts from the last beat, so it exceeds the real block by up to this much.
   */
  heartbeatMs?: number;
  /**
   * How long one capture may wait for the main thread to reach JavaScript, in ms (default 1000): a thread
   * blocked inside one native call (a sync fs or crypto call, Atomics.wait) cannot be paused until it returns.
   */
  captureTimeoutMs?: number;
  /**
   * Also report, at once, a loop silent for longer than this (ms, 20 or more; 0: off, the default),
   * and when it beats again: a live health signal for load-aware balancing. The heartbeat then beats
   * at least every stallMs / 4.
   */
  stallMs?: number;
  /** Receives a crash of the watchdog thread itself; by default a process warning. */
  onError?: (error: unknown) => void;
}

export interface Watchdog {
  /** Stops the heartbeat and the thread, which closes the pipe. Final: the fd is gone. */
  stop(): Promise<void>;
}

const MAX_TIMER_MS = 2 ** 31 - 1;
/** A line longer than this is dropped whole (the link refuses to buffer without bound). */
export const MAX_LINE_LENGTH = 1 << 20;

let running = false;

/** Starts the heartbeat and the watchdog thread. Throws a RangeError naming a bad option. */
export function startWatchdog({ fd = 4, thresholdMs, heartbeatMs, captureTimeoutMs = 1000, stallMs = 0, onError = warn }: WatchdogOptions): Watchdog {
  if (!(Number.isInteger(stallMs) && (stallMs === 0 || (stallMs >= 20 && stallMs <= MAX_TIMER_MS)))) {
    throw new RangeError(`Expected the \`stallMs\` option to be 0 (off) or an integer from 20 to ${MAX_TIMER_MS}, got \`${stallMs}\``);
  }
  // Under 10 ms, ordinary GC pauses would count as blocks.
  if (!(Number.isInteger(thresholdMs) && (thresholdMs === 0 || (thresholdMs >= 10 && thresholdMs <= MAX_TIMER_MS)))) {
    throw new RangeError(`Expected the \`thresholdMs\` option to be 0 (off) or an integer from 10 to ${MAX_TIMER_MS}, got \`${thresholdMs}\``);
  }
  const beatMs =
    heartbeatMs ?? Math.min(Math.max(Math.floor(thresholdMs / 4), 2), 250, stallMs > 0 ? Math.floor(stallMs / 4) : Infinity);
  if (thresholdMs > 0 && !(Number.isInteger(beatMs) && beatMs >= 1 && beatMs < thresholdMs)) {
    throw new RangeError(`Expected the \`heartbeatMs\` option to be an integer from 1 to \`thresholdMs\` - 1 (${thresholdMs - 1}), got \`${beatMs}\``);
  }
  if (!(Number.isInteger(captureTimeoutMs) && captureTimeoutMs >= 1 && captureTimeoutMs <= MAX_TIMER_MS)) {
    throw new RangeError(`Expected the \`captureTimeoutMs\` option to be an integer from 1 to ${MAX_TIMER_MS}, got \`${captureTimeoutMs}\``);
  }
  if (!(Number.isInteger(fd) && fd >= 0) || !isPipe(fd)) {
    throw new RangeError(`Expected the \`fd\` option to be an open pipe or socket to the master (stdio 'pipe' of the fork), got \`${fd}\``);
  }
  // Two threads reading one fd would split the master's requests between them.
  if (running) throw new Error('The watchdog is already running in this process');

  const heartbeat = new SharedArrayBuffer(8);
  const beats = new BigInt64Array(heartbeat);
  const beat = (): void => {
    Atomics.store(beats, 0, process.hrtime.bigint());
  };
  beat();

  // The thread looks often (an Atomics.load, off the main thread), so that a block is seen within
  // thresholdMs + 100 ms of its start, whatever the heartbeat period.
  const workerData: WatchdogThreadData = { heartbeat, fd, thresholdMs, stallMs, pollMs: Math.min(beatMs, 100), captureTimeoutMs };
  const fromSource = import.meta.url.endsWith('.ts');
  // Throws under --permission without --allow-worker: the caller goes on without a watchdog.
  const thread = new Worker(new URL(fromSource ? './watchdog-thread.ts' : './watchdog-thread.js', import.meta.url), {
    workerData,
    // The compiled thread needs none of the worker's flags: inheriting them would run the preload (and any
    // --import/--require of the app, an APM agent for one) again inside the thread. Run from source, it
    // needs the loader running this file, and one that reaches worker threads (not tsx on Node 20).
    ...(fromSource ? {} : { execArgv: [] }),
  });
  running = true;
  // Never keeps the process alive. No 'message' listener on it: that would ref the thread again.
  thread.unref();
  thread.on('error', onError);
  const timer = thresholdMs > 0 || stallMs > 0 ? setInterval(beat, beatMs).unref() : null;
  // The thread ends by itself when the master closes the pipe: nobody to beat for any more.
  thread.once('exit', () => {
    if (timer !== null) clearInterval(timer);
  });

  let stopping: Promise<void> | null = null;
  return {
    stop() {
      stopping ??= (async () => {
        if (timer !== null) clearInterval(timer);
        await thread.terminate();
      })();
      return stopping;
    },
  };
}

function isPipe(fd: number): boolean {
  try {
    const stat = fstatSync(fd);
    return stat.isSocket() || stat.isFIFO();
  } catch {
    return false;
  }
}

/**
 * Returns a function fed with decoded text chunks that calls onLine once per complete '\n'-ended line,
 * whatever the chunking. A line longer than maxLength is dropped whole and reported to onOverflow.
 */
export function lineSplitter(onLine: (line: string) => void, { maxLength = MAX_LINE_LENGTH, onOverflow = () => {} }: { maxLength?: number; onOverflow?: () => void } = {}): (chunk: string) => void {
  let partial = '';
  let dropping = false;
  return (chunk) => {
    let start = 0;
    for (let end = chunk.indexOf('\n'); end !== -1; end = chunk.indexOf('\n', start)) {
      const line = partial + chunk.slice(start, end);
      partial = '';
      start = end + 1;
      if (dropping) dropping = false;
      else if (line.length > maxLength) onOverflow();
      else onLine(line);
    }
    if (dropping) return;
    partial += chunk.slice(start);
    if (partial.length > maxLength) {
      partial = '';
      dropping = true;
      onOverflow();
    }
  };
}

/** Parses one line as a JSON object with a string `type`; null for anything else. */
export function parseMessage(line: string): ({ type: string } & Record<string, unknown>) | null {
  if (line.trim() === '') return null;
  try {
    const value: unknown = JSON.parse(line);
    if (typeof value === 'object' && value !== null && !Array.isArray(value) && typeof (value as { type?: unknown }).type === 'string') {
      return value as { type: string } & Record<string, unknown>;
    }
  } catch {
    // Not JSON: the caller treats it as garbage.
  }
  return null;
}

/** The frames of a parsed message, or null when `stack` is not an array of well-formed frames. */
export function parseFrames(value: unknown): StackFrame[] | null {
  if (!Array.isArray(value)) return null;
  const frames: StackFrame[] = [];
  for (const item of value as unknown[]) {
    if (typeof item !== 'object' || item === null) return null;
    const { functionName, url, line, column } = item as Record<string, unknown>;
    if (typeof functionName !== 'string' || typeof url !== 'string' || !Number.isInteger(line) || !Number.isInteger(column)) return null;
    frames.push({ functionName, url, line: line as number, column: column as number });
  }
  return frames;
}

function warn(error: unknown): void {
  process.emitWarning(error instanceof Error ? error : String(error), { code: 'CLUSTERD_WATCHDOG' });
}
