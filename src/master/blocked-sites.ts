// --report-blocked: where each worker id's event loop was caught blocked, aggregated by the app's own
// innermost frame over a sliding window, so that "p99 lag is high" leads to "this function did it".
// Kept by worker id, not process: a replacement inherits its predecessor's sites (it runs the same
// code), as `status` shows the last blocked report of an id.
import type { StackFrame } from '../loop/types.js';
import { IdCounts } from './id-counts.js';

/** One place where a worker's loop was caught blocked, over the window. */
export interface BlockedSite {
  function: string;
  url: string;
  line: number;
  count: number;
  /** The longest of those blocks, in ms: the whole silence of the loop, once it has beaten again. */
  maxMs: number;
  /** When the last one was caught (epoch ms). */
  lastSeen: number;
}

/** The function of a site where a native call blocked the loop: the site's place is where JavaScript resumed. */
export const NATIVE_CALL = '(native call)';

/** The window sites are aggregated over. */
export const SITE_WINDOW_MS = 5 * 60_000;
/** Blocks kept per worker id (the oldest go first): a bound, whatever the app does. */
const MAX_BLOCKS = 1000;

interface Block {
  time: number;
  blockedMs: number;
  frame: StackFrame;
  /** Not over yet (lasted() not called): its length so far grows with the clock. */
  ongoing: boolean;
}

/**
 * The innermost frame of the app's own code: not Node's (node:), not clusterd's runtime, nor a
 * package (node_modules) that clusterd's runtime called; null when the stack has none. Such a stack
 * says nothing the app can act on: mostly, the capture reached the main thread just as the block
 * ended, in the timers' own code that runs next (`insert`, `listOnTimeout`), and it would be counted
 * as a site of its own. A package clusterd's runtime called (swc, compiling a TypeScript file the app
 * require()d late) is skipped for the app's frame further out (the require), while a package the app
 * called (`[bcrypt, handler]`) is the app's, as is what the app runs from clusterd's callbacks.
 */
export function appFrame(frames: readonly StackFrame[], ownPrefixes: readonly string[] = []): StackFrame | null {
  const internal = (frame: StackFrame): boolean => frame.url === '' || frame.url.startsWith('node:');
  const own = (frame: StackFrame): boolean => ownPrefixes.some((prefix) => prefix !== '' && frame.url.startsWith(prefix));
  const inPackage = (frame: StackFrame): boolean => frame.url.includes('/node_modules/');
  for (let i = 0; i < frames.length; i++) {
    const frame = frames[i]!;
    if (internal(frame) || own(frame)) continue;
    if (!inPackage(frame)) return frame;
    // A package's frame: whoever called into the package decides (the next frame out that is clusterd's
    // or the app's). When clusterd did, the search goes on past that caller, once for the whole run.
    const caller = frames.findIndex((outer, j) => j > i && !internal(outer) && (own(outer) || !inPackage(outer)));
    if (caller === -1 || !own(frames[caller]!)) return frame;
    i = caller;
  }
  return null;
}

/** The frame a blocked loop is named by: the app's innermost (appFrame), else the innermost there is; null for no frames. */
export function blockedFrame(frames: readonly StackFrame[], ownPrefixes: readonly string[]): StackFrame | null {
  return appFrame(frames, ownPrefixes) ?? frames[0] ?? null;
}

export class BlockedSites {
  readonly #blocks = new Map<number, Block[]>();
  readonly #totals = new IdCounts();
  readonly #ownPrefixes: readonly string[];

  /** `ownPrefixes`: the URLs clusterd's runtime has frames under (its dist/, and its src/ where frames are source-mapped). */
  constructor({ ownPrefixes = [] }: { ownPrefixes?: readonly string[] } = {}) {
    this.#ownPrefixes = ownPrefixes;
  }

  /**
   * A block of worker `id`'s loop, with the stack taken during it and the silence so far; the handle's
   * lasted() sets the block's whole length once the loop turns again. Every block counts (total());
   * one with no frame that says where (inside a native call: no JavaScript ran to be caught, or only
   * Node's and clusterd's own code) is no site. `native`: the stack was caught as JavaScript resumed
   * after a native call: the site is NATIVE_CALL at the app's frame it returned to, never that frame's
   * function, which did not block (a route's `res.end` after its JSON.parse).
   */
  record(id: number, frames: readonly StackFrame[], blockedMs: number, time = Date.now(), { native = false } = {}): { lasted(ms: number): void } {
    this.#totals.add(id);
    const found = appFrame(frames, this.#ownPrefixes);
    if (!found) return { lasted() {} };
    const frame = native ? { ...found, functionName: NATIVE_CALL } : found;
    let blocks = this.#blocks.get(id);
    if (!blocks) this.#blocks.set(id, (blocks = []));
    const block: Block = { time, blockedMs, frame, ongoing: true };
    blocks.push(block);
    if (blocks.length > MAX_BLOCKS) blocks.shift();
    return {
      lasted(ms) {
        block.blockedMs = Math.max(block.blockedMs, ms);
        block.ongoing = false;
      },
    };
  }

  /**
   * Worker `id`'s sites over the window ending `now`, worst (longest block) first. A block still going
   * on counts for as long as it has lasted so far: its silence when the stack was taken (112 ms,
   * say) read as its length beside the live "blocked now, for 1.6 s" until the loop turned.
   */
  sites(id: number, now = Date.now()): BlockedSite[] {
    const blocks = (this.#blocks.get(id) ?? []).filter((block) => now - block.time <= SITE_WINDOW_MS);
    this.#blocks.set(id, blocks);
    const sites = new Map<string, BlockedSite>();
    for (const { time, blockedMs: caughtMs, frame, ongoing } of blocks) {
      const blockedMs = ongoing ? Math.max(caughtMs, now - (time - caughtMs)) : caughtMs;
      const key = `${frame.url}:${frame.line}:${frame.functionName}`;
      const site = sites.get(key) ?? { function: frame.functionName, url: frame.url, line: frame.line, count: 0, maxMs: 0, lastSeen: 0 };
      site.count++;
      site.maxMs = Math.max(site.maxMs, blockedMs);
      site.lastSeen = Math.max(site.lastSeen, time);
      sites.set(key, site);
    }
    return [...sites.values()].sort((a, b) => b.maxMs - a.maxMs || b.count - a.count);
  }

  /** Forgets worker `id` (scaled away): its blocks and sites. */
  drop(id: number): void {
    this.#totals.drop(id);
    this.#blocks.delete(id);
  }

  /** The worker ids with a block counted. */
  ids(): number[] {
    return this.#totals.ids();
  }

  /** Every block of worker `id` caught since the master started (a counter, for /metrics). */
  total(id: number): number {
    return this.#totals.get(id);
  }
}
