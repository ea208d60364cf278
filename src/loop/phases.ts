// `clusterd loop`: where a worker's event loop spends its time, by phase and by callback, measured in
// the worker for a window of time and only then. There is no per-phase timing API (libuv declined
// uv_loop_stats; nodejs/node#19063 was closed), so the time is attributed by async_hooks: every
// callback Node runs for an async resource is timed between its `before` and `after` hooks, and the
// resource's type says which phase ran it:
//
//   timers      Timeout (setTimeout, setInterval)
//   check       Immediate (setImmediate)
//   nextTick    TickObject, counted on its own, not inside the callback that queued it
//   microtasks  PROMISE reactions (then, await) and queueMicrotask, likewise
//   pending     write and shutdown completions (WRITEWRAP, SHUTDOWNWRAP, SENDWRAP), which libuv
//               defers to the next iteration's pending phase
//   close       a handle's last callback, its close callback (moved there when its destroy comes)
//   poll        every other I/O callback (TCPWRAP, HTTPINCOMINGMESSAGE, FSREQCALLBACK, ...)
//   idle        time the loop waited in poll for something to do: 1 - ELU over the window
//
// Time is exclusive: a callback that runs another one inside it (a synchronous emit through a
// resource) is charged without the inner one. Where each callback was created (the function, file
// and line of the innermost frame of the app's own code at the resource's init) comes from a short
// stack trace taken at init; promises get none, as there are too many of them to pay for each. A
// resource created before the window (a setInterval of the app's start-up) had no init to see: its
// type comes from the resource itself (executionAsyncResource), and where its callback is defined
// from the inspector at the end of the window ([[FunctionLocation]]), for the callbacks listed. So is
// a timer set in the window with no frame of the app on the stack (clusterd's own ticker re-arming).
//
// Cost: async_hooks with promise hooks is expensive (about 30% on a promise-heavy server, nodejs/
// benchmarking#181), which is why it runs for the window only. The time spent inside the hooks
// themselves is measured and reported (overheadPct), so the figures can be read against it.
import { createHook, executionAsyncResource, type AsyncHook } from 'node:async_hooks';
import { Session } from 'node:inspector/promises';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { originalPosition } from './source-map.js';
import type { CallbackTime, LoopBreakdown, LoopPhaseName, PhaseTime } from './types.js';

const TIMERS = new Set(['Timeout']);
const CHECK = new Set(['Immediate']);
const NEXT_TICK = new Set(['TickObject']);
const MICROTASKS = new Set(['PROMISE', 'Microtask']);
const PENDING = new Set(['WRITEWRAP', 'SHUTDOWNWRAP', 'SENDWRAP']);
/** Resources whose last callback is their close callback. */
const HANDLES = new Set(['TCPWRAP', 'TCPSERVERWRAP', 'PIPEWRAP', 'PIPESERVERWRAP', 'TTYWRAP', 'UDPWRAP', 'PROCESSWRAP', 'SIGNALWRAP', 'FSEVENTWRAP', 'STATWATCHER', 'ZLIB']);
/** The callbacks listed in a breakdown. */
const TOP_CALLBACKS = 20;
/** Frames kept in the stack taken at init: the app's own frame is near the top. */
const SITE_FRAMES = 8;

export const PHASES: readonly LoopPhaseName[] = ['timers', 'pending', 'poll', 'check', 'close', 'nextTick', 'microtasks', 'idle'];

function phaseOf(type: string): LoopPhaseName {
  if (TIMERS.has(type)) return 'timers';
  if (CHECK.has(type)) return 'check';
  if (NEXT_TICK.has(type)) return 'nextTick';
  if (MICROTASKS.has(type)) return 'microtasks';
  if (PENDING.has(type)) return 'pending';
  return 'poll';
}

interface Site {
  function: string;
  url: string;
  line: number;
  column: number;
}

interface Resource {
  type: string;
  site: Site | null;
  /** The callback of a resource seen only when it ran (created before the window): where it is defined is looked up at the end. */
  callback?: (...args: unknown[]) => unknown;
  /** This resource's last callback, until the next: moved to `close` if destroy follows it. */
  last: { ms: number; entry: CallbackTime } | null;
}

/** The innermost frame of the app's own code in the current stack (not Node's, not clusterd's runtime). */
function appSite(ownPrefix: string, ownUrl: string): Site | null {
  const limit = Error.stackTraceLimit;
  const prepare = Error.prepareStackTrace;
  Error.stackTraceLimit = SITE_FRAMES;
  Error.prepareStackTrace = (_error, callSites) => callSites;
  const holder: { stack?: NodeJS.CallSite[] } = {};
  try {
    Error.captureStackTrace(holder, appSite);
    for (const callSite of holder.stack ?? []) {
      const file = callSite.getFileName();
      // CommonJS frames carry a path, ES module frames a file: URL.
      if (!file || file.startsWith('node:') || (ownPrefix !== '' && (file.startsWith(ownPrefix) || file.startsWith(ownUrl)))) continue;
      const url = file.startsWith('/') ? pathToFileURL(file).href : file;
      return { function: callSite.getFunctionName() ?? '', url, line: callSite.getLineNumber() ?? 0, column: callSite.getColumnNumber() ?? 0 };
    }
    return null;
  } finally {
    Error.stackTraceLimit = limit;
    Error.prepareStackTrace = prepare;
  }
}

/**
 * Measures the loop for `durationMs` and resolves with the breakdown; nothing runs before or after.
 * `ownPrefix` is where clusterd's runtime lives (its frames are not the app's).
 */
export function measureLoop(durationMs: number, { ownPrefix = '', signal }: { ownPrefix?: string; signal?: AbortSignal } = {}): Promise<LoopBreakdown> {
  const ownUrl = ownPrefix === '' ? '' : pathToFileURL(ownPrefix).href;
  const resources = new Map<number, Resource>();
  const phases = Object.fromEntries(PHASES.map((phase) => [phase, { ms: 0, count: 0 }])) as Record<LoopPhaseName, { ms: number; count: number }>;
  const callbacks = new Map<string, CallbackTime>();
  // For entries without a place: a callback to look up at the end.
  const callbackOf = new Map<CallbackTime, (...args: unknown[]) => unknown>();
  // The callbacks running now (a callback may run another inside it): runningIds, runningStarts and
  // runningInner below, with their start and the time already charged to the ones inside.
  let hookMs = 0;

  // A callback set before the window has no site: it is known by the function itself, so that two
  // anonymous ones (the app's, and clusterd's own ticker) or two of one name are not one entry.
  const byCallback = new WeakMap<(...args: unknown[]) => unknown, CallbackTime>();
  const entryForCallback = (type: string, callback: (...args: unknown[]) => unknown): CallbackTime => {
    let entry = byCallback.get(callback);
    if (!entry) {
      entry = { type, function: callback.name, url: '', line: 0, count: 0, totalMs: 0, maxMs: 0 };
      byCallback.set(callback, entry);
      callbacks.set(`${type} #${callbacks.size}`, entry);
      callbackOf.set(entry, callback);
    }
    return entry;
  };

  // Where each entry's place is in the generated code, by column too: tsx's output of a whole module
  // is one line, so every callback of a TypeScript file was one entry. Mapped at the end.
  const columnOf = new Map<CallbackTime, number>();
  const entryFor = (type: string, site: Site | null): CallbackTime => {
    const key = `${type} ${site?.url ?? ''}:${site?.line ?? 0}:${site?.column ?? 0} ${site?.function ?? ''}`;
    let entry = callbacks.get(key);
    if (!entry) {
      entry = { type, function: site?.function ?? '', url: site?.url ?? '', line: site?.line ?? 0, count: 0, totalMs: 0, maxMs: 0 };
      callbacks.set(key, entry);
      if (site) columnOf.set(entry, site.column);
    }
    return entry;
  };

  // Promises take a path of their own: a promise-heavy app runs hundreds of thousands of reactions a
  // second, and each one runs these hooks three times. Every reaction is charged to one entry (a promise
  // has no site: a stack per promise costs too much), so none is recorded at init, and the callbacks
  // running now are three arrays rather than an object apiece: with a record, a key and an object per
  // reaction, a 100,000-step promise chain took 170 ms measured instead of 6 (Node 20), and the app's
  // blocks grew as long; async_hooks' own promise machinery, which no hook can skip, still costs about 35.
  const promiseEntry = entryFor('PROMISE', null);
  /** A callback's own time, to its phase and its entry. */
  const charge = (phase: LoopPhaseName, entry: CallbackTime, own: number): void => {
    phases[phase].ms += own;
    phases[phase].count++;
    entry.count++;
    entry.totalMs += own;
    if (own > entry.maxMs) entry.maxMs = own;
  };
  const runningIds: number[] = [];
  const runningStarts: number[] = [];
  const runningInner: number[] = [];
  let depth = 0;

  const hook: AsyncHook = createHook({
    init(asyncId, type, _triggerAsyncId, resource) {
      if (type === 'PROMISE') return;
      const t0 = performance.now();
      const site = MICROTASKS.has(type) ? null : appSite(ownPrefix, ownUrl);
      // No frame of the app set it (clusterd's own ticker re-arming its interval as the loop turns busy or
      // idle): it is known by its callback, as one set before the window, and located at the end.
      const callback = site === null ? timerCallback(resource) : undefined;
      resources.set(asyncId, callback ? { type, site, last: null, callback } : { type, site, last: null });
      hookMs += performance.now() - t0;
    },
    before(asyncId) {
      const t0 = performance.now();
      if (!resources.has(asyncId) && !(executionAsyncResource() instanceof Promise)) resources.set(asyncId, preexisting(executionAsyncResource()));
      runningIds[depth] = asyncId;
      runningInner[depth] = 0;
      depth++;
      const t1 = performance.now();
      runningStarts[depth - 1] = t1;
      hookMs += t1 - t0;
    },
    after(asyncId) {
      const t0 = performance.now();
      // An `after` without its `before` (the callback that enabled the hook) is not timed.
      if (depth > 0 && runningIds[depth - 1] === asyncId) {
        depth--;
        const elapsed = t0 - runningStarts[depth]!;
        const own = Math.max(0, elapsed - runningInner[depth]!);
        if (depth > 0) runningInner[depth - 1]! += elapsed;
        const resource = resources.get(asyncId);
        if (resource === undefined) {
          // A promise's reaction (or a resource of the window's first callback, whose type is not known).
          charge('microtasks', promiseEntry, own);
        } else {
          const entry = !resource.site && resource.callback ? entryForCallback(resource.type, resource.callback) : entryFor(resource.type, resource.site);
          charge(phaseOf(resource.type), entry, own);
          resource.last = { ms: own, entry };
        }
      }
      hookMs += performance.now() - t0;
    },
    destroy(asyncId) {
      const resource = resources.get(asyncId);
      if (resource === undefined) return;
      const t0 = performance.now();
      resources.delete(asyncId);
      // A handle's last callback was its close callback.
      if (resource.last && HANDLES.has(resource.type)) {
        phases.poll.ms -= resource.last.ms;
        phases.poll.count--;
        phases.close.ms += resource.last.ms;
        phases.close.count++;
      }
      hookMs += performance.now() - t0;
    },
  });

  const eluBefore = performance.eventLoopUtilization();
  const loopsBefore = loopCount();
  const started = performance.now();
  hook.enable();
  return new Promise((resolve) => {
    // At the window's end, or sooner when `signal` aborts (what it measured until then).
    const end = async (): Promise<void> => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      hook.disable();
      const windowMs = performance.now() - started;
      const elu = performance.eventLoopUtilization(eluBefore);
      const loops = loopCount();
      phases.idle.ms = elu.idle;
      phases.idle.count = 0;
      const perSec = (ms: number): number => (ms * 1000) / windowMs;
      const result: Record<LoopPhaseName, PhaseTime> = Object.fromEntries(
        PHASES.map((phase) => [phase, { ms: round(Math.max(0, phases[phase].ms)), msPerSec: round(perSec(Math.max(0, phases[phase].ms))), count: Math.max(0, phases[phase].count) }]),
      ) as Record<LoopPhaseName, PhaseTime>;
      const top = [...callbacks.values()].filter((entry) => entry.count > 0).sort((a, b) => b.totalMs - a.totalMs).slice(0, TOP_CALLBACKS);
      await locate(top.filter((entry) => entry.url === '' && callbackOf.has(entry)).map((entry) => [entry, callbackOf.get(entry)!] as const), ownPrefix, columnOf);
      for (const entry of top) {
        const original = entry.url === '' ? null : originalPosition(entry.url, entry.line, columnOf.get(entry) ?? 0);
        if (original) Object.assign(entry, { url: original.url, line: original.line });
      }
      resolve({
        durationMs: Math.round(windowMs),
        phases: result,
        iterationsPerSec: loops === null || loopsBefore === null ? 0 : round(((loops - loopsBefore) * 1000) / windowMs),
        callbacks: top.map((entry) => ({ ...entry, totalMs: round(entry.totalMs), maxMs: round(entry.maxMs) })),
        overheadPct: round((hookMs * 100) / windowMs),
      });
    };
    const onAbort = (): void => void end();
    const timer = setTimeout(onAbort, durationMs);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * A resource that ran without an init in the window: its type and callback, from the object itself.
 * Node's HTTP parsers' resources (HTTPServerAsyncResource, HTTPClientAsyncResource) carry the type
 * their init gave (`HTTPINCOMINGMESSAGE`): a request on a keep-alive connection opened before the
 * window is named as one on a new connection is.
 */
function preexisting(resource: unknown): Resource {
  const object = resource as { constructor?: { name?: string }; type?: unknown } | null;
  const name = typeof object?.type === 'string' && /^[A-Z0-9_]+$/.test(object.type) ? object.type : (object?.constructor?.name ?? 'UNKNOWN');
  const callback = timerCallback(resource);
  if (callback) return { type: name, site: null, last: null, callback };
  // An I/O handle (a server, a socket) the app opened at start: its callbacks run in poll.
  return { type: name, site: null, last: null };
}

/** The callback of a timer or an immediate, which Node keeps on the object; undefined for other resources. */
function timerCallback(resource: unknown): ((...args: unknown[]) => unknown) | undefined {
  const object = resource as { constructor?: { name?: string }; _onTimeout?: unknown; _onImmediate?: unknown } | null;
  const name = object?.constructor?.name;
  if (name === 'Timeout' && typeof object?._onTimeout === 'function') return object._onTimeout as () => unknown;
  if (name === 'Immediate' && typeof object?._onImmediate === 'function') return object._onImmediate as () => unknown;
  return undefined;
}

/**
 * Where these callbacks are defined, through an inspector session on this thread (the loop turns:
 * the window is over): each function's [[FunctionLocation]], and its script's URL from the
 * scriptParsed events of Debugger.enable. Best effort: a failure leaves the entries as they are.
 */
async function locate(entries: ReadonlyArray<readonly [CallbackTime, (...args: unknown[]) => unknown]>, ownPrefix: string, columnOf: Map<CallbackTime, number>): Promise<void> {
  if (entries.length === 0) return;
  const session = new Session();
  const scripts = new Map<string, string>();
  const holder = '__clusterdLocate';
  try {
    session.connect();
    session.on('Debugger.scriptParsed', ({ params }) => scripts.set(params.scriptId, params.url));
    await session.post('Debugger.enable');
    for (const [entry, callback] of entries) {
      (globalThis as Record<string, unknown>)[holder] = callback;
      const { result } = await session.post('Runtime.evaluate', { expression: `globalThis.${holder}` });
      if (!result.objectId) continue;
      const { internalProperties = [] } = await session.post('Runtime.getProperties', { objectId: result.objectId, ownProperties: true });
      const location = internalProperties.find((property) => property.name === '[[FunctionLocation]]')?.value?.value as { scriptId: string; lineNumber: number; columnNumber: number } | undefined;
      const url = location ? scripts.get(location.scriptId) : undefined;
      if (!location || !url || url.startsWith('node:')) continue;
      if (ownPrefix && url.startsWith(pathToFileURL(ownPrefix).href)) {
        // clusterd's own (its loop-delay ticker): said so, not passed off as the app's.
        entry.function = `${entry.function || '(anonymous)'} [clusterd]`;
        continue;
      }
      entry.url = url;
      entry.line = location.lineNumber + 1;
      columnOf.set(entry, location.columnNumber + 1);
    }
  } catch {
    // Another debugger holds the thread, or the inspector is unavailable: the names stay, without places.
  } finally {
    delete (globalThis as Record<string, unknown>)[holder];
    await session.post('Debugger.disable').catch(() => {});
    session.disconnect();
  }
}

function loopCount(): number | null {
  const info = (performance as unknown as { nodeTiming?: { uvMetricsInfo?: { loopCount: number } } }).nodeTiming?.uvMetricsInfo;
  return info ? info.loopCount : null;
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
