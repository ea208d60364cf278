// What the dashboard's buttons do, behind one interface: in the master, ControlOperations itself;
// in `clusterd dashboard`, the control plane's client (src/cli/dashboard.ts). The server
// (server.ts) checks who may act and how long a capture may run; these run what it allowed.
import { frameLine } from './history.js';
import type { CallbackTime, LoopBreakdown, StackFrame } from '../loop/types.js';
import type { BlockedStack, ControlOperations } from '../master/status.js';
import { printable } from '../errors.js';

/** A loop too blocked to profile or measure: how long it has been silent and where it is, a frame a line. */
export interface BlockedCapture {
  blockedMs: number;
  stack: string[];
}

/** POST /api/loop's answer: what `clusterd loop --json` prints. */
export type LoopReport = { worker: number } & LoopBreakdown;

export type ProfileResult = { json: Buffer; blocked?: undefined } | { json?: undefined; blocked: BlockedCapture };
export type LoopResult = { report: LoopReport; blocked?: undefined } | { report?: undefined; blocked: BlockedCapture };

export interface DashboardActions {
  /** `who`: the page's address, for the master's log. */
  reload(who: string): Promise<{ generation: number; replaced: number }>;
  restart(id: number, who: string): Promise<{ pid: number }>;
  /** A CPU profile of worker `id` as .cpuprofile JSON; `signal`: the page went away, it is not wanted. */
  profile(id: number, durationMs: number, signal?: AbortSignal): Promise<ProfileResult>;
  /** Where worker `id`'s loop spends `durationMs`; `signal` ends the window early. */
  loop(id: number, durationMs: number, signal?: AbortSignal): Promise<LoopResult>;
}

/** The master's own actions: its ControlOperations, as the control plane runs them. */
export function masterActions(operations: Pick<ControlOperations, 'reload' | 'restart' | 'profile' | 'loop'>): DashboardActions {
  return {
    reload: (who) => operations.reload({ parallel: 1 }, () => {}, who),
    restart: (id, who) => operations.restart(id, () => {}, who),
    profile: async (id, durationMs, signal) => {
      const outcome = await operations.profile(id, { durationMs, intervalUs: 1000, signal });
      return outcome.blocked ? { blocked: blockedCapture(outcome.blocked) } : { json: Buffer.from(JSON.stringify(outcome.profile)) };
    },
    loop: async (id, durationMs, signal) => {
      const outcome = await operations.loop(id, { durationMs, signal });
      return outcome.blocked ? { blocked: blockedCapture(outcome.blocked) } : { report: loopReport(id, outcome.breakdown) };
    },
  };
}

export function blockedCapture(blocked: Pick<BlockedStack, 'blockedMs'> & { stack: StackFrame[] }): BlockedCapture {
  return { blockedMs: blocked.blockedMs, stack: blocked.stack.map(frameLine) };
}

/** The fields `clusterd loop --json` prints, in its order. */
export function loopReport(worker: number, { durationMs, phases, iterationsPerSec, callbacks, overheadPct }: LoopBreakdown): LoopReport {
  return { worker, durationMs, phases, iterationsPerSec, callbacks: callbacks.map((callback: CallbackTime) => ({ ...callback, function: printable(callback.function), url: printable(callback.url) })), overheadPct };
}
