// One parse function per control-plane request: what a client sent, checked, as the handlers use
// it. protobufjs already gives each field its wire type (a uint32 is a number, a bool a boolean, a
// missing field its default); what is left is the range of each value, named in a usage error
// (INVALID_ARGUMENT: exit 2 in the CLI) when it is out of bounds.
import type { WireLogsRequest, WireLoopRequest, WireProfileRequest, WireReloadRequest, WireRestartRequest, WireScaleRequest, WireStackRequest, WireStatusRequest, WireWatchRequest } from './proto.js';
import { MAX_WATCH_INTERVAL_MS, MIN_WATCH_INTERVAL_MS } from './options.js';
import { UsageError } from '../errors.js';

/** The most workers a cluster may have (as `-i` and `scale` allow). */
export const MAX_WORKER_ID = 1024;
/** The most recent log lines a master keeps, so the most a Logs request can ask for. */
export const MAX_LOG_LINES = 100_000;

/** Watch pushes at most one message per this many ms unless the client asks otherwise. */
export const DEFAULT_WATCH_INTERVAL_MS = 250;

export function parseStatusRequest(raw: Partial<WireStatusRequest> | null | undefined): { history: boolean } {
  return { history: raw?.includeHistory === true };
}

/** `minIntervalMs` 0 means the default; other values are clamped to what the master serves. */
export function parseWatchRequest(raw: Partial<WireWatchRequest> | null | undefined): { history: boolean; intervalMs: number } {
  return { history: raw?.includeHistory === true, intervalMs: watchInterval(Number(raw?.minIntervalMs ?? 0)) };
}

export function watchInterval(requested: number): number {
  if (!Number.isFinite(requested) || requested <= 0) return DEFAULT_WATCH_INTERVAL_MS;
  return Math.min(MAX_WATCH_INTERVAL_MS, Math.max(MIN_WATCH_INTERVAL_MS, Math.round(requested)));
}

/** `parallel` 0 means 1. */
export function parseReloadRequest(raw: Partial<WireReloadRequest> | null | undefined): { parallel: number } {
  const parallel = Number(raw?.parallel ?? 0);
  if (!Number.isInteger(parallel) || parallel < 0 || parallel > MAX_WORKER_ID) {
    throw new UsageError(`Expected \`--parallel\` to be an integer from 1 to ${MAX_WORKER_ID}, got \`${String(raw?.parallel)}\``);
  }
  return { parallel: parallel || 1 };
}

/** Restart and Stack name one worker. */
export function parseWorkerRequest(raw: Partial<WireRestartRequest | WireStackRequest> | null | undefined): { id: number } {
  return { id: workerId(raw?.id) };
}

/** The spec itself ("N", "+K", "-K") is read by the operation; here only its size is bounded. */
export function parseScaleRequest(raw: Partial<WireScaleRequest> | null | undefined): { spec: string } {
  const spec = String(raw?.spec ?? '');
  if (spec.length === 0 || spec.length > 12) throw new UsageError(`Expected a worker count such as 4, +1 or -2, got \`${spec.slice(0, 40)}\``);
  return { spec };
}

/** `worker` 0 means every worker; `lines` 0 sends no recent lines. */
export function parseLogsRequest(raw: Partial<WireLogsRequest> | null | undefined): { follow: boolean; worker: number | undefined; lines: number } {
  const worker = Number(raw?.worker ?? 0);
  const lines = Number(raw?.lines ?? 0);
  if (worker !== 0) workerId(worker);
  if (!Number.isInteger(lines) || lines < 0 || lines > MAX_LOG_LINES) {
    throw new UsageError(`Expected \`--lines\` to be an integer from 0 to ${MAX_LOG_LINES}, got \`${String(raw?.lines)}\``);
  }
  return { follow: raw?.follow === true, worker: worker === 0 ? undefined : worker, lines };
}

/** `clusterd profile`'s window and sampling interval: what the master will take. */
export const PROFILE_DURATION_MS = { min: 100, max: 300_000 } as const;

/** A profile's file name, from `clusterd profile` and the dashboard alike: `<cluster>-w<id>-<yyyymmdd>T<hhmmss>.cpuprofile` (UTC), unique enough, and sorts by time. */
export function profileFileName(cluster: string, id: number, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, '');
  return `${cluster}-w${id}-${stamp}.cpuprofile`;
}
export const PROFILE_INTERVAL_US = { min: 50, max: 100_000, default: 1000 } as const;
/** `clusterd loop`'s window. */
export const LOOP_DURATION_MS = { min: 100, max: 60_000 } as const;

/** `intervalUs` 0 means 1000. */
export function parseProfileRequest(raw: Partial<WireProfileRequest> | null | undefined): { id: number; durationMs: number; intervalUs: number } {
  const durationMs = within('--duration', raw?.durationMs, PROFILE_DURATION_MS, 'ms');
  const intervalUs = Number(raw?.intervalUs ?? 0) === 0 ? PROFILE_INTERVAL_US.default : within('--interval', raw?.intervalUs, PROFILE_INTERVAL_US, 'us');
  return { id: workerId(raw?.id), durationMs, intervalUs };
}

export function parseLoopRequest(raw: Partial<WireLoopRequest> | null | undefined): { id: number; durationMs: number } {
  return { id: workerId(raw?.id), durationMs: within('--duration', raw?.durationMs, LOOP_DURATION_MS, 'ms') };
}

function within(option: string, value: unknown, { min, max }: { min: number; max: number }, unit: string): number {
  const number = Number(value ?? 0);
  if (!Number.isInteger(number) || number < min || number > max) throw new UsageError(`Expected \`${option}\` to be from ${min}${unit} to ${max}${unit}, got \`${String(value)}\``);
  return number;
}

/** A worker id: an integer from 1 to MAX_WORKER_ID, else INVALID_ARGUMENT. */
function workerId(value: unknown): number {
  const id = Number(value ?? 0);
  if (!Number.isInteger(id) || id < 1 || id > MAX_WORKER_ID) {
    throw new UsageError(`Expected a worker id (an integer from 1 to ${MAX_WORKER_ID}), got \`${String(value)}\``);
  }
  return id;
}
