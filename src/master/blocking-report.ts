// What --report-blocked's captures say beyond the stack: whether a frame is clusterd's own (its
// runtime's files), and whether a late probe caught a native call (LATE_CAPTURE_MS, NATIVE_TAIL_MS).
import type { Capture } from '../loop/capture.js';
import type { StackFrame } from '../loop/types.js';
import { monotonicMs } from './loop-checks.js';

/**
 * Where clusterd's worker runtime lives: its frames are not the app's. The file URL of dist/, and of
 * src/ beside it, where a frame points once mapped through dist's source maps (the probe applies them,
 * as --enable-source-maps does): file:///.../node_modules/clusterd/src/loop/phases.ts, installed.
 */
export const RUNTIME_PREFIXES = runtimePrefixes(new URL('..', import.meta.url).href);

/** The URLs clusterd's frames have, for its runtime at `dist` (a file URL ending in /). */
export function runtimePrefixes(dist: string): string[] {
  return [dist, new URL('../src/', dist).href];
}

/**
 * A probe that ran this long after it was sent ran late: running JavaScript takes V8's interrupt within
 * a few ms, so the main thread was inside a native call (a sync fs, crypto or zlib call, JSON.parse of a
 * huge string, a long GC), and the stack it caught is of whatever JavaScript ran once the call returned.
 */
export const LATE_CAPTURE_MS = 50;

/**
 * A late probe was a native call's only if the loop turned within this long after it: a loaded machine
 * can make a probe late into JavaScript that is blocking (the inspector's thread waits for a core), and
 * that JavaScript then runs on, its frames the right ones. A native call's block ends once JavaScript
 * has run the probe and finished the callback it returned to.
 */
export const NATIVE_TAIL_MS = 50;

/**
 * Whether the silence `lasted` measures ended within NATIVE_TAIL_MS after `blockedMs` into it, the
 * probe having run at `at` (monotonic ms); waits no longer than until then and a little more for the
 * beat to be read: a silence still going on is JavaScript's.
 */
export async function endedRightAfter(lasted: Promise<number>, blockedMs: number, at: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const cut = new Promise<null>((resolve) => {
    timer = setTimeout(resolve, Math.max(0, at + NATIVE_TAIL_MS + 100 - monotonicMs()), null);
  });
  const length = await Promise.race([lasted, cut]);
  clearTimeout(timer);
  return length !== null && length - blockedMs <= NATIVE_TAIL_MS;
}

/**
 * The frames a probe files its block under. V8 ran it at the next stack check (see src/loop/capture.ts):
 * where that is a function's entry, as after a JSON.parse whose caller goes on to call `serializeBig(o)`,
 * that function had run nothing, and the block up to the probe was its caller's (the code before the
 * call; the frame that made a native call has returned): its caller's frame is where. Late or not: a
 * probe sent a few ms before the parse returned is not late (LATE_CAPTURE_MS) and lands there all the same.
 */
export function blockedFrames({ frames, atEntry }: Pick<Capture, 'frames' | 'atEntry'>): StackFrame[] {
  return atEntry ? frames.slice(1) : frames;
}

/** A place where the worker's loop was blocked past --report-blocked, as one capture saw it. */
export interface BlockingReport {
  frames: StackFrame[];
  /** The probe ran late (LATE_CAPTURE_MS) and the loop turned right after it (NATIVE_TAIL_MS): blocked in a native call, which returned to `frames`. */
  native?: boolean;
  /** How long the loop had been silent when the stack was taken. */
  blockedMs: number;
  time: number;
  /** How long the block lasted in all: settles when the loop beats again (or the worker exits). */
  lasted: Promise<number>;
}
