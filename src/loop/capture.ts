// Takes a worker's JavaScript stack through the inspector protocol, whatever its main thread is
// doing: idle in the event loop, running, or spinning in `while (true) {}`. The master drives it over
// the worker's inspector (src/master/inspector.ts), which runs on a thread of its own in the worker
// and so answers while the main thread is blocked; the pause itself lands through a V8 interrupt.
//
// A capture: `Debugger.enable` (whose `scriptParsed` events map scriptId -> url: the frames' own `url`
// comes back empty on Node 20), `Debugger.pause`, then a one-statement probe script through
// `Runtime.evaluate`. When JavaScript is running, the pause interrupts it and lands in the app's code (the
// probe, run from the interrupt that dispatches the messages, answers first without breaking; if it does
// break, its frames are dropped). When the loop is idle, `Debugger.pause` only arms a break at the next
// JavaScript, which would be whatever callback comes next, maybe minutes later; the probe is that
// JavaScript, so the pause lands at once in the probe on an otherwise empty stack: that is "idle". Probe
// frames are dropped. The paused event is answered with `Debugger.resume` at once, and once
// `Debugger.resumed` says the main thread has left the pause, `Debugger.disable`. The debugger is on only
// for the few ms of a capture: while it is on, V8 reports every script compiled (eval, new Function, vm),
// keeps their sources, and stops at any `debugger;` statement the app ships (`new Function` ran about 6x
// slower with it on, on Node 20 and 24). A capture costs the main thread a few ms; the first one in a
// process that loaded 2,000 modules about 150 ms (the first Debugger.enable reports every script).
//
// Positions go through the script's source map when it has one (tsx's inline maps, a compiled app's
// .js.map), as --enable-source-maps does for Error stacks: tsx's output has the whole module on line 2.
// The inspector applies no maps.
//
// A main thread inside one long native call (execSync, a sync fs or crypto call) cannot be paused until
// the call returns: after timeoutMs the capture gives up (null). Its messages, still queued, run when the
// call returns; the capture sees them through (pause, resume, disable) in the background, and the next
// capture waits for that.
import type { EventEmitter } from 'node:events';
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { z } from 'zod';
import type { StackFrame } from './types.js';

/** What a capture needs of an inspector session: commands, and events by method name ({ params }). */
export interface InspectorSession extends Pick<EventEmitter, 'on' | 'off'> {
  post(method: string, params?: object): Promise<unknown>;
}

// The inspector answers from inside the worker, whose app is not trusted code: its events are parsed
// like any other message from a worker, and one that does not parse is ignored.
const scriptParsed = z.object({ scriptId: z.string(), url: z.string(), sourceMapURL: z.string().optional(), hash: z.string() });
const rawFrame = z.object({
  functionName: z.string(),
  url: z.string().optional(),
  location: z.object({ scriptId: z.string(), lineNumber: z.number().int().nonnegative(), columnNumber: z.number().int().nonnegative().optional() }),
});
const paused = z.object({ callFrames: z.array(rawFrame) });
type RawFrame = z.infer<typeof rawFrame>;

interface Script {
  url: string;
  sourceMapURL: string;
  hash: string;
}

const PROBE_URL = 'clusterd-capture-probe';
const PROBE = `void 0\n//# sourceURL=${PROBE_URL}`;
/** A runaway recursion can have thousands of frames; the innermost ones tell the story. */
export const MAX_FRAMES = 200;
/** Parsed source maps by script hash and URL (null: unreadable), the most recent MAX_SOURCE_MAPS. */
const sourceMaps = new Map<string, { map: SourceMap; base: string } | null>();
const MAX_SOURCE_MAPS = 64;
const ignore = (): void => {};

export class StackCapturer {
  readonly #session: InspectorSession;
  readonly #timeoutMs: number;
  /** The scripts the current capture's Debugger.enable reported, by scriptId. */
  readonly #scripts = new Map<string, Script>();
  #waiting: ((frames: StackFrame[]) => void) | null = null;
  /** Settles once the main thread has been through every message of the previous capture. */
  #settled: Promise<unknown> = Promise.resolve();
  #inFlight: Promise<StackFrame[] | null> | null = null;

  constructor(session: InspectorSession, { timeoutMs }: { timeoutMs: number }) {
    this.#session = session;
    this.#timeoutMs = timeoutMs;
    session.on('Debugger.scriptParsed', ({ params }: { params: unknown }) => {
      const script = scriptParsed.safeParse(params);
      if (script.success) this.#scripts.set(script.data.scriptId, { url: script.data.url, sourceMapURL: script.data.sourceMapURL ?? '', hash: script.data.hash });
    });
    session.on('Debugger.paused', ({ params }: { params: unknown }) => {
      const parsed = paused.safeParse(params);
      if (!parsed.success) return;
      const resolve = this.#waiting;
      this.#waiting = null;
      // Only a pause this capture waits for is resumed. Debugger.enable replays a pause someone else holds
      // (a developer's debugger at a breakpoint): that one is theirs. One that starts as a capture ends (a
      // `debugger;` statement) is let go by the Debugger.disable that follows, as no agent accepts it.
      if (resolve === null) return;
      const frames = this.#toFrames(parsed.data.callFrames);
      session.post('Debugger.resume').catch(ignore);
      resolve(frames);
    });
  }

  /** The main thread's frames, innermost first (empty: idle), or null when it was not in JavaScript within the timeout. A capture under way is shared. */
  capture(): Promise<StackFrame[] | null> {
    this.#inFlight ??= this.#capture().finally(() => {
      this.#inFlight = null;
    });
    return this.#inFlight;
  }

  async #capture(): Promise<StackFrame[] | null> {
    let gaveUp = false;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<null>((resolve) => {
      timer = setTimeout(() => {
        gaveUp = true;
        resolve(null);
      }, this.#timeoutMs);
    });
    const session = this.#session;
    // The attempt runs to its end even after the deadline (it needs the main thread, which may be stuck in
    // a native call), and the next capture starts only after it: messages of a new capture that reached the
    // main thread while it was still paused would find the debugger paused, so that Debugger.pause would do
    // nothing and Debugger.enable would replay the old pause.
    const attempt = this.#settled.then(async (): Promise<StackFrame[] | null> => {
      if (gaveUp) return null;
      try {
        this.#scripts.clear();
        // Every script's scriptParsed arrives before this resolves.
        await session.post('Debugger.enable');
        const resumed = new Promise<void>((resolve) => {
          const onResumed = (): void => {
            session.off('Debugger.resumed', onResumed);
            resolve();
          };
          session.on('Debugger.resumed', onResumed);
        });
        const paused = new Promise<StackFrame[]>((resolve) => {
          this.#waiting = resolve;
        });
        session.post('Debugger.pause').catch(ignore);
        // When the loop is idle, the probe's answer comes after the paused event. When JavaScript is
        // running, the messages are dispatched from an interrupt, where the probe runs without breaking,
        // and the pause lands a moment later in the app's code: so once the probe has answered, the pause
        // still has timeoutMs to land. If it does not, it never will (another debugger holds the main
        // thread paused, say), and the capture ends rather than hold up the ones after it.
        let grace: NodeJS.Timeout | undefined;
        const probed = session
          .post('Runtime.evaluate', { expression: PROBE, silent: true })
          .catch(ignore)
          .then(() => new Promise<null>((resolve) => (grace = setTimeout(resolve, this.#timeoutMs, null))));
        const taken = await Promise.race([paused, probed]).finally(() => clearTimeout(grace));
        // Disabled once the main thread has left the pause, which the paused handler has asked for.
        if (taken !== null) await resumed;
        return taken;
      } finally {
        this.#waiting = null;
        await session.post('Debugger.disable').catch(ignore);
      }
    });
    this.#settled = attempt.catch(ignore);
    try {
      return await Promise.race([attempt, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  #toFrames(callFrames: RawFrame[]): StackFrame[] {
    // The last probe frame: a probe can still be on the stack under the next one, when the next capture's
    // messages are dispatched from an interrupt taken as the previous probe returns.
    const probe = callFrames.findLastIndex(({ url, location }) => (this.#scripts.get(location.scriptId)?.url || url) === PROBE_URL);
    return callFrames.slice(probe + 1, probe + 1 + MAX_FRAMES).map(({ functionName, url, location }) => {
      const script = this.#scripts.get(location.scriptId);
      const line = location.lineNumber;
      const column = location.columnNumber ?? 0;
      const original = script === undefined ? null : this.#originalPosition(script, line, column);
      return original === null ? { functionName, url: script?.url || url || '', line: line + 1, column: column + 1 } : { functionName, ...original };
    });
  }

  /** Maps a 0-based generated position to the original source's URL and 1-based line and column. */
  #originalPosition(script: Script, line: number, column: number): { url: string; line: number; column: number } | null {
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
    return { url: sourceUrl(`${typeof root === 'string' ? root : ''}${entry.originalSource}`, cached.base), line: entry.originalLine + 1, column: entry.originalColumn + 1 };
  }
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
    const text = readSmallFile(fileURLToPath(location));
    return text === null ? null : { map: new SourceMap(JSON.parse(text) as never), base: location.href };
  } catch {
    return null;
  }
}

/** The largest source map read: the app names the file (its sourceMappingURL comment), so it could name /dev/zero. */
const MAX_SOURCE_MAP_BYTES = 32 * 1024 * 1024;

/** A regular file's text when it is at most MAX_SOURCE_MAP_BYTES, else null. */
function readSmallFile(path: string): string | null {
  // Non-blocking, so that opening a FIFO does not wait for a writer.
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile() || stats.size > MAX_SOURCE_MAP_BYTES) return null;
    const buffer = Buffer.alloc(stats.size);
    let read = 0;
    while (read < buffer.length) {
      const bytes = readSync(fd, buffer, read, buffer.length - read, read);
      if (bytes === 0) break;
      read += bytes;
    }
    return buffer.toString('utf8', 0, read);
  } finally {
    closeSync(fd);
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

/** Renders frames the way Node prints a stack trace: "    at fn (file:///app.js:12:5)". */
export function formatStack(stack: readonly StackFrame[]): string[] {
  return stack.map(({ functionName, url, line, column }) => {
    const location = `${url || '<anonymous>'}:${line}:${column}`;
    return functionName ? `    at ${functionName} (${location})` : `    at ${location}`;
  });
}
