// What `profile` and `loop` print, as pure functions of what the master sent.
import type { CpuProfile, LoopBreakdown, LoopPhaseName } from '../loop/types.js';
import type { StackView } from '../control/types.js';
import { printable } from './format.js';
import { blockedWhere, frameLine } from './stack-view.js';
import { appFrame } from '../master/blocked-sites.js';
import { PROBE_URL } from '../loop/capture.js';

/** One function's share of a profile's time. */
export interface SelfTime {
  functionName: string;
  url: string;
  /** 1-based, as editors count (the profile's own are 0-based); 0 when the frame has none. */
  line: number;
  samples: number;
  /** Its share of the profile's time, in %. */
  pct: number;
}

/**
 * The functions with the most self time: each sample weighed by how long it stood for, added up by
 * function and place, as a share of the whole. V8 takes a sample every interval when it can, but not
 * while the thread is inside a long native call (a 100 MB readFileSync): the sample before one stands
 * for all of it. Counted one each, such a call read as 3% where it took 35% of the time, behind
 * `(idle)`, whose samples are many and short. As DevTools does, sample i lasts until sample i + 1
 * (timeDeltas[i + 1]; the last one until endTime). The time before the first sample (timeDeltas[0])
 * stands for no sample: DevTools starts its window at the first sample and drops it, but the header
 * says the whole window (endTime - startTime), and a lead of 1.8 s out of 3.9 (a worker inside a long
 * JSON.parse as the profile started) read as "85% (idle)" of a busy worker. It counts as UNSAMPLED.
 * A profile without time deltas falls back to counts (`samples`, else each node's `hitCount`). V8's
 * own entries, `(idle)`, `(program)`, `(garbage collector)`, count like any other, so the shares add up
 * to 100 of the whole window.
 */
export function topSelfTime(profile: CpuProfile, count: number, { ownPrefixes }: { ownPrefixes: readonly string[] }): SelfTime[] {
  const { weights, unsampled } = sampleWeights(profile);
  const total = [...weights.values()].reduce((sum, { weight }) => sum + weight, unsampled);
  const byFunction = new Map<string, SelfTime & { weight: number }>();
  if (unsampled > 0) byFunction.set(UNSAMPLED, { functionName: UNSAMPLED, url: '', line: 0, samples: 0, pct: 0, weight: unsampled });
  const callerOf = nativeCallers(profile);
  for (const node of profile.nodes) {
    const { samples = 0, weight = 0 } = weights.get(node.id) ?? {};
    if (samples === 0) continue;
    const place = placeOf(node, callerOf);
    const { functionName, url, lineNumber } = ownPrefixes.some((prefix) => place.url.startsWith(prefix)) ? CLUSTERD_PLACE : place;
    const line = lineNumber >= 0 ? lineNumber + 1 : 0;
    const key = `${functionName} ${url}:${line}`;
    const entry = byFunction.get(key) ?? { functionName: functionName || '(anonymous)', url, line, samples: 0, pct: 0, weight: 0 };
    entry.samples += samples;
    entry.weight += weight;
    byFunction.set(key, entry);
  }
  return [...byFunction.values()]
    .sort((a, b) => b.weight - a.weight || b.samples - a.samples)
    .slice(0, count)
    .map(({ weight, ...entry }) => ({ ...entry, pct: total === 0 ? 0 : (100 * weight) / total }));
}

/**
 * The summary's one entry for clusterd's own code in the worker: its heartbeat, its request wrapper,
 * its lag figures, the stack probe of --report-blocked (each at most a few tenths of a percent, and a
 * pseudo-URL for the probe's). The .cpuprofile keeps every frame as V8 gave it.
 */
export const CLUSTERD_RUNTIME = '(clusterd runtime)';
const CLUSTERD_PLACE = { functionName: CLUSTERD_RUNTIME, url: '', lineNumber: -1 };
/**
 * Where clusterd's frames are, for topSelfTime: its runtime's files in the cluster's workers (dist/,
 * src/ once mapped: ClusterView's runtimePrefixes) and the stack probe.
 */
export function ownPrefixes(runtimePrefixes: readonly string[]): string[] {
  return [...runtimePrefixes, PROBE_URL];
}

/** The summary's entry for the time before V8's first sample, which no sample stands for. */
export const UNSAMPLED = '(unsampled)';

type ProfileNode = CpuProfile['nodes'][number];

/**
 * A node's name and place, as printed: a native function (a binding, `writeSync` for zlib, `run` for
 * pbkdf2) has no URL, so it is named with the nearest caller that has one, the app's before Node's:
 * `writeSync (native, from gzipIt)` at gzipIt's place. V8's own entries, `(idle)` and the like, stay as they are.
 */
function placeOf(node: ProfileNode, callerOf: ReadonlyMap<number, ProfileNode>): { functionName: string; url: string; lineNumber: number } {
  const { functionName, url, lineNumber } = node.callFrame;
  const caller = url === '' && functionName !== '' && !functionName.startsWith('(') ? callerOf.get(node.id) : undefined;
  if (!caller) return { functionName, url, lineNumber };
  return { functionName: `${functionName} (native, from ${caller.callFrame.functionName || '(anonymous)'})`, url: caller.callFrame.url, lineNumber: caller.callFrame.lineNumber };
}

/** For each node without a URL, its nearest caller with one: the app's (not node:) if any, else Node's. */
function nativeCallers({ nodes }: CpuProfile): Map<number, ProfileNode> {
  const parentOf = new Map<number, ProfileNode>();
  for (const node of nodes) for (const child of node.children ?? []) parentOf.set(child, node);
  const callers = new Map<number, ProfileNode>();
  for (const node of nodes) {
    if (node.callFrame.url !== '') continue;
    let nearest: ProfileNode | undefined;
    const seen = new Set<number>();
    for (let parent = parentOf.get(node.id); parent && !seen.has(parent.id); parent = parentOf.get(parent.id)) {
      seen.add(parent.id);
      const { url } = parent.callFrame;
      if (url === '') continue;
      nearest ??= parent;
      if (!url.startsWith('node:')) {
        nearest = parent;
        break;
      }
    }
    if (nearest) callers.set(node.id, nearest);
  }
  return callers;
}

/**
 * Each node's samples, and the time they stand for (µs; the count itself when the profile has no time
 * deltas); `unsampled`, the time before the first sample (µs; 0 without time deltas).
 */
function sampleWeights({ samples = [], timeDeltas = [], nodes, startTime, endTime }: CpuProfile): { weights: Map<number, { samples: number; weight: number }>; unsampled: number } {
  const weights = new Map<number, { samples: number; weight: number }>();
  const add = (id: number, samples: number, weight: number): void => {
    const entry = weights.get(id) ?? { samples: 0, weight: 0 };
    entry.samples += samples;
    entry.weight += weight;
    weights.set(id, entry);
  };
  if (samples.length === 0) {
    for (const node of nodes) add(node.id, node.hitCount ?? 0, node.hitCount ?? 0);
    return { weights, unsampled: 0 };
  }
  const timed = timeDeltas.length === samples.length;
  let at = startTime;
  for (let i = 0; i < samples.length; i++) {
    if (!timed) {
      add(samples[i]!, 1, 1);
      continue;
    }
    at += timeDeltas[i]!;
    // V8's deltas can be negative now and then (samples recorded out of order): no time, not less.
    const lasted = i + 1 < samples.length ? timeDeltas[i + 1]! : endTime - at;
    add(samples[i]!, 1, Math.max(0, lasted));
  }
  return { weights, unsampled: timed ? Math.max(0, timeDeltas[0]!) : 0 };
}

/** Whether a parsed JSON document is a profile this command can read (and so a file worth writing). */
export function isCpuProfile(value: unknown): value is CpuProfile {
  if (typeof value !== 'object' || value === null) return false;
  const { nodes, startTime, endTime } = value as Partial<CpuProfile>;
  const frameOk = (frame: Partial<CpuProfile['nodes'][number]['callFrame']> | undefined): boolean =>
    typeof frame?.functionName === 'string' && typeof frame.url === 'string' && typeof frame.lineNumber === 'number';
  const { samples } = value as Partial<CpuProfile>;
  return (
    Array.isArray(nodes) &&
    nodes.every((node) => typeof node?.id === 'number' && frameOk(node.callFrame) && (node.hitCount === undefined || typeof node.hitCount === 'number')) &&
    (samples === undefined || (Array.isArray(samples) && samples.every((id) => typeof id === 'number'))) &&
    typeof startTime === 'number' &&
    typeof endTime === 'number'
  );
}

/** `  42.1%  parseBig  file:///srv/app/report.js:41`, one line per function. */
export function selfTimeLines(top: readonly SelfTime[]): string[] {
  return top.map(({ functionName, url, line, pct }) => `${pct.toFixed(1).padStart(6)}%  ${printable(functionName)}${url ? `  ${printable(url)}${line ? `:${line}` : ''}` : ''}`);
}

/**
 * The worker's loop is blocked: what `profile` and `loop` print instead of a result, naming the app's
 * frame where it is (blockedWhere). `during`: `loop`'s window ran, and its answer did not come back;
 * a stack of Node's async_hooks alone is then the measurement's own hooks (a promise storm: the stack
 * read `promiseAfterHook (node:internal/async_hooks)`, and the line "nothing was measured" after 7 s
 * of hooks).
 */
export function blockedNote(id: number, blocked: StackView & { blockedMs: number }, { runtimePrefixes, during = false }: { runtimePrefixes: readonly string[]; during?: boolean }): string[] {
  const where = blockedWhere(blocked.frames, runtimePrefixes);
  const silent = `silent for ${(blocked.blockedMs / 1000).toFixed(1)} s${where ? `, in ${where}` : ''}`;
  const hooks = during && appFrame(blocked.frames, runtimePrefixes) === null && blocked.frames.some((frame) => frame.url === 'node:internal/async_hooks');
  const what = !during
    ? 'nothing was measured'
    : hooks
      ? "its answer did not come back: the measurement's own async_hooks, which run for every promise, blocked it (a promise-heavy app)"
      : 'its answer did not come back';
  return [`worker ${id}'s event loop is blocked (${silent}): ${what}. Its stack:`, ...(blocked.frames.length > 0 ? blocked.frames.map(frameLine) : ['    (no frames: the thread was in native code)'])];
}

/** Resources whose callback is an HTTP server's request handler. */
const REQUEST_TYPES = new Set(['HTTPINCOMINGMESSAGE', 'HTTPSERVER', 'HTTP2STREAM']);

const PHASE_ORDER: readonly LoopPhaseName[] = ['timers', 'pending', 'poll', 'check', 'close', 'nextTick', 'microtasks', 'idle'];

/** `loop`: the phases as a table (ms per second, share of the window, callbacks), then the top callbacks. */
export function loopLines(id: number, breakdown: LoopBreakdown): string[] {
  const lines = [`worker ${id}: ${(breakdown.durationMs / 1000).toFixed(1)} s of its event loop, ${Math.round(breakdown.iterationsPerSec)} iterations/s; measuring cost ${breakdown.overheadPct.toFixed(1)}% of it`, ''];
  lines.push(`${'phase'.padEnd(11)}${'ms/s'.padStart(8)}${'%'.padStart(7)}${'callbacks'.padStart(11)}`);
  for (const name of PHASE_ORDER) {
    const phase = breakdown.phases[name];
    lines.push(`${name.padEnd(11)}${phase.msPerSec.toFixed(1).padStart(8)}${(phase.msPerSec / 10).toFixed(1).padStart(7)}${(name === 'idle' ? '' : String(phase.count)).padStart(11)}`);
  }
  if (breakdown.callbacks.length > 0) {
    lines.push('', 'callbacks that took the most time:');
    for (const callback of breakdown.callbacks.slice(0, 10)) {
      // A name without a place (a callback the inspector could not locate) is still worth saying.
      const where = callback.url ? `  ${printable(callback.function) || '(anonymous)'} ${printable(callback.url)}:${callback.line}` : callback.function ? `  ${printable(callback.function)}` : '';
      lines.push(`${callback.totalMs.toFixed(1).padStart(9)} ms  ${String(callback.count).padStart(6)}x  max ${callback.maxMs.toFixed(1)} ms  ${printable(callback.type)}${where}`);
    }
    const [top] = breakdown.callbacks;
    // An HTTP request's callback is the server's 'request' handler and all it calls: a resource of
    // Node's, with no place of the app's to name. The functions inside are a profile's to say.
    if (top && top.url === '' && REQUEST_TYPES.has(top.type)) {
      lines.push('', `the top entry is HTTP requests' handlers (${printable(top.type)}): \`clusterd profile\` of this worker names the functions that take their time`);
    }
  }
  return lines;
}
