// Takes a worker's JavaScript stack through the inspector protocol, whatever its main thread is
// doing: idle in the event loop, running, or spinning in `while (true) {}`. The master drives it over
// the worker's inspector (src/master/inspector.ts), which runs on a thread of its own in the worker
// and reaches the main thread through a V8 interrupt.
//
// A capture is one `Runtime.evaluate` of a probe: a few statements that read the stack they run on
// (Error.captureStackTrace, with the callsites as data) and return it. When JavaScript is running, the
// inspector dispatches the message from an interrupt, so the probe runs on top of the app's frames, which
// are what it returns once its own are dropped; when the loop is idle, it runs from the loop on an empty
// stack: that is "idle". No debugger is involved: an earlier version paused the main thread through the
// Debugger domain, whose `Debugger.enable` reports every script the process has loaded, each time:
// 5-10 ms of the worker's and the master's CPU per capture for a small app, about 150 ms for one that
// loaded 2,000 modules, spent in the middle of the stall the capture reports (with --report-blocked, once
// per blocked loop). The probe costs about a millisecond, however many modules there are. It runs in the
// app's realm, so an app could break it (by freezing Error, say): its answer is parsed as any message
// from a worker, and one that does not parse fails the capture with one line.
//
// Positions go through the script's source map when it has one, as --enable-source-maps does for Error
// stacks (tsx's output has the whole module on line 2; the inspector applies no maps): inside the probe
// from Node's own cache (module.findSourceMap) where the process has source maps on (tsx turns them
// on), else here from the `sourceMappingURL` comment of the file on disk (a compiled app's .js.map).
//
// A main thread inside one long native call (execSync, a sync fs or crypto call) cannot run the probe
// until the call returns: after timeoutMs the capture gives up (null). The probe then runs when the call
// returns, and its answer is dropped. One that returns sooner runs the probe late, on whatever JavaScript
// runs next: the capture says when it was sent and when it ran, so that the caller can tell. V8 takes an
// interrupt only at a stack check, a function's entry or a loop's back edge, not where a builtin returns:
// after `parseBig(s)` (JSON.parse, which checks no interrupt while it parses) the probe runs at the entry of
// the next function called, `serializeBig`, parseBig's frame long gone. The capture says when its
// innermost frame is at its function's entry (`atEntry`): that function had run nothing yet. Its place
// is read in the script's source where the file on disk is that script (function-entry.ts).
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { MAX_SOURCE_BYTES, atFunctionEntry, type EntryClue } from './function-entry.js';
import { MAX_URL_CHARS, mappedOnDisk, sourceUrl } from './source-map.js';

export { MAX_URL_CHARS };
import type { StackFrame } from './types.js';
import { ClusterdError, clip } from '../errors.js';

/** What a capture needs of an inspector session: its commands. */
export interface InspectorSession {
  post(method: string, params?: object): Promise<unknown>;
}

/** A runaway recursion can have thousands of frames; the innermost ones tell the story. */
export const MAX_FRAMES = 200;

/** The probe's script URL: its frames (in a profile taken while it ran) are clusterd's. */
export const PROBE_URL = 'clusterd-capture-probe';
/**
 * Runs in the worker's main thread. Returns when it ran (process.hrtime's clock, in ms, the clock of the
 * heartbeat's stamps; null if the app broke it), its callsites below its own frames, innermost
 * first, as [function, file, line, column, [source, line, column] from the source map or null], and
 * whether the innermost may be at its function's entry (an EntryClue, for the master to read in the
 * source; null: not); it leaves Error's settings as it found them.
 *
 * At the entry stack check V8 gives the position of the function's parameter list, the enclosing
 * position being where the function begins: an arrow's are one (`(a) =>`, `a =>`, `async (a) =>`); a
 * method's "(" is its key past it (`m(`, `get m(`, `*m(`, `async m(`, `constructor(`), a `function`'s
 * past `function name` (`function* name`, `async function name`, ...): the same on Node 20 and 24. So a
 * frame on its function's first line may be at its entry when it is exactly that far in, the head
 * rebuilt from the function's name (`function namedNext` 18, `async function asyncNext` 24, a class's
 * `get g` 5, `constructor` 11). Not "at most that far": a loop's back edge also takes the interrupt, at
 * the loop's keyword, and a one-line `(req, res) => { for (...) }` spins 16 columns in. Exactly that far
 * can be a loop too, by chance (`function spin(n) { for` is `async function spin` long): the master reads
 * the source there (function-entry.ts), given the frame's offset and the script's hash. V8 hashes a
 * script the first time it is asked, on this blocked thread: about 10 ms a megabyte, once a script. The
 * probe does not ask where the frame's offset is past what the master reads (MAX_SOURCE_BYTES: a
 * script's UTF-8 bytes are at least its characters); a script over it with the frame nearer its start
 * is still hashed, once: its length is not known here without the hash. A head that the
 * name does not give (an anonymous or inferred-name `function (`, a computed key) reads as not at its
 * entry: the block is filed under that function, as if it had run.
 */
const PROBE = `(() => {
  let at = null;
  try { at = Number(process.hrtime.bigint()) / 1e6; } catch {}
  const E = Error, limit = E.stackTraceLimit, prepare = E.prepareStackTrace;
  const maps = process.sourceMapsEnabled && typeof process.getBuiltinModule === 'function' ? process.getBuiltinModule('node:module') : null;
  try {
    E.stackTraceLimit = ${MAX_FRAMES + 8};
    E.prepareStackTrace = (_, sites) => sites;
    const holder = {};
    E.captureStackTrace(holder);
    const sites = holder.stack;
    let below = 0;
    for (let i = 0; i < sites.length; i++) if (sites[i].getScriptNameOrSourceURL() === '${PROBE_URL}') below = i + 1;
    let clue = null;
    const inner = sites[below];
    try {
      const into = inner ? inner.getColumnNumber() - inner.getEnclosingColumnNumber() : -1;
      if (into >= 0 && inner.getLineNumber() === inner.getEnclosingLineNumber()) {
        const name = inner.getFunctionName() || '';
        const heads = ['', '*', 'async ', 'async *', 'function ', 'function* ', 'async function ', 'async function* '];
        if (into === 0 || (name !== '' && heads.some((head) => into === head.length + name.length)) || (inner.isConstructor() && into === 'constructor'.length)) {
          const file = inner.getScriptNameOrSourceURL() || '';
          const position = inner.getPosition();
          const hash = into > 0 && position < ${MAX_SOURCE_BYTES} && (file.startsWith('/') || file.startsWith('file:')) ? inner.getScriptHash() || null : null;
          clue = [into, position, hash];
        }
      }
    } catch {}
    return [at, sites.slice(below, below + ${MAX_FRAMES}).map((site) => {
      const file = site.getScriptNameOrSourceURL() || '';
      const line = site.getLineNumber() || 0, column = site.getColumnNumber() || 0;
      let original = null;
      if (maps && file && line > 0) {
        try {
          const entry = maps.findSourceMap(file)?.findEntry(line - 1, column - 1);
          if (entry && typeof entry.originalSource === 'string') original = [entry.originalSource, entry.originalLine + 1, entry.originalColumn + 1];
        } catch {}
      }
      return [site.getFunctionName() || '', file, line, column, original];
    }), clue];
  } finally {
    E.stackTraceLimit = limit;
    E.prepareStackTrace = prepare;
  }
})()
//# sourceURL=${PROBE_URL}`;

// The probe answers from inside the worker, whose app is not trusted code: parsed like any other
// message from a worker, its strings clipped (a function whose `//# sourceURL=` is 50 MB long would
// otherwise be kept, in every blocked site and stack the master holds).
/** The longest function name kept from a captured frame (a URL: MAX_URL_CHARS). */
export const MAX_FUNCTION_CHARS = 1000;
const position = z.number().int().nonnegative();
/** A name or URL from the app, clipped: the master keeps sites and stacks for status and the dashboard. */
const clipped = (max: number) => z.string().transform((text) => clip(text, max));
const functionName = clipped(MAX_FUNCTION_CHARS);
const url = clipped(MAX_URL_CHARS);
const evaluated = z.object({
  result: z.object({
    value: z.tuple([
      z.number().nonnegative().finite().nullable(),
      z.array(z.tuple([functionName, url, position, position, z.tuple([url, position, position]).nullable()])).max(MAX_FRAMES),
      z.tuple([position, position, clipped(64).nullable()]).nullable(),
    ]),
  }),
});
type Site = z.infer<typeof evaluated>['result']['value'][1][number];

/**
 * One capture: the main thread's frames (empty: idle), when the probe ran on the heartbeat's clock (ms;
 * null: unknown), and when it was sent, on the same clock (CLOCK_MONOTONIC is one clock for every process).
 */
export interface Capture {
  frames: StackFrame[];
  at: number | null;
  sentAt: number;
  /** The innermost frame is at its function's entry: it had run nothing when the probe ran. */
  atEntry: boolean;
}

/** How long the script's file may take to read for the entry check (a first read of an 8 MiB script takes tens of ms). */
export const ENTRY_CHECK_MS = 1_000;

/** Reads whether a frame the column calls an entry is one: atFunctionEntry, or a test's. */
export type EntryCheck = (url: string, clue: EntryClue) => Promise<boolean>;

export class StackCapturer {
  readonly #session: InspectorSession;
  readonly #timeoutMs: number;
  readonly #entryCheck: EntryCheck;
  #inFlight: Promise<Capture | null> | null = null;

  constructor(session: InspectorSession, { timeoutMs, entryCheck = atFunctionEntry }: { timeoutMs: number; entryCheck?: EntryCheck }) {
    this.#session = session;
    this.#timeoutMs = timeoutMs;
    this.#entryCheck = entryCheck;
  }

  /** The main thread's frames, innermost first (empty: idle), and when; null when it was not in JavaScript within the timeout. A capture under way is shared. */
  capture(): Promise<Capture | null> {
    this.#inFlight ??= this.#capture().finally(() => {
      this.#inFlight = null;
    });
    return this.#inFlight;
  }

  async #capture(): Promise<Capture | null> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<null>((resolve) => (timer = setTimeout(resolve, this.#timeoutMs, null)));
    const sentAt = Number(process.hrtime.bigint()) / 1e6;
    const answer = this.#session.post('Runtime.evaluate', { expression: PROBE, returnByValue: true, silent: true });
    // Settled after the deadline (a native call returned), nobody reads it.
    answer.catch(() => {});
    try {
      const reply = await Promise.race([answer, deadline]);
      if (reply === null) return null;
      const parsed = evaluated.safeParse(reply);
      if (!parsed.success) throw new ClusterdError('ERR_CLUSTERD_INSPECTOR', 'the worker answered the stack probe with something that is not a stack (does the app change Error?)');
      const [at, sites, entry] = parsed.data.result.value;
      let atEntry = false;
      if (entry !== null) {
        // The script's own file, not the original source that toFrame names. Reading it can hang (a
        // stuck NFS or FUSE mount), and every later capture of this worker would share this one: past
        // ENTRY_CHECK_MS the column's word (an entry) stands. A time of its own, not what is left of
        // the capture's: on a loaded machine the probe's answer can come near that deadline.
        const check = this.#entryCheck(sites.length > 0 ? scriptUrl(sites[0]![1]) : '', { into: entry[0], position: entry[1], hash: entry[2] });
        let checkTimer: NodeJS.Timeout | undefined;
        const late = new Promise<boolean>((resolve) => (checkTimer = setTimeout(resolve, ENTRY_CHECK_MS, true)));
        atEntry = await Promise.race([check, late]).finally(() => clearTimeout(checkTimer));
      }
      return { frames: sites.map(toFrame), at, sentAt, atEntry };
    } finally {
      clearTimeout(timer);
    }
  }
}

/** A script's name as V8 gives it (a path for CommonJS, a URL for ES modules) as a URL. */
function scriptUrl(file: string): string {
  return file.startsWith('/') ? pathToFileURL(file).href : file;
}

/** A probe's site as a frame: URLs for files, positions in the original source where a map says so. */
function toFrame([functionName, file, line, column, original]: Site): StackFrame {
  const url = scriptUrl(file);
  if (original !== null) return { functionName, url: sourceUrl(original[0], url), line: original[1], column: original[2] };
  return { functionName, url, line, column, ...(line > 0 ? mappedOnDisk(url, line - 1, column - 1) : {}) };
}

/** Renders frames the way Node prints a stack trace: "    at fn (file:///app.js:12:5)". */
export function formatStack(stack: readonly StackFrame[]): string[] {
  return stack.map(({ functionName, url, line, column }) => {
    const location = `${url || '<anonymous>'}:${line}:${column}`;
    return functionName ? `    at ${functionName} (${location})` : `    at ${location}`;
  });
}
