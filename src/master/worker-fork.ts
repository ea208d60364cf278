// What the master forks a worker with (WorkerSpec, with what its heartbeat is watched for) and the
// fork itself: its environment, its stdio (fd 4: the heartbeat pipe), its process group, and a
// failed spawn: cleaned up and said in words.
import { existsSync } from 'node:fs';
import { fork, type ChildProcess } from 'node:child_process';
import { getSystemErrorMap } from 'node:util';
import type { ClusterConfig } from './cluster-config.js';
import type { Listeners } from './listeners.js';
import type { LogSink } from './logs.js';
import { SETTINGS_ENV, type WorkerSettings } from '../protocol.js';
import { appEnvironment, type Entry } from './entry.js';
import { beatPeriod } from './loop-watch.js';
import type { Reaper } from './reaper.js';
import { nativeHelper } from '../system/native.js';

export interface WorkerSpec {
  id: number;
  generation: number;
  clusterName: string;
  entry: Entry;
  args: readonly string[];
  /** The app's own environment variables, over the master's. */
  env?: Readonly<Record<string, string>>;
  settings: WorkerSettings;
  /** What the master watches for in the worker's heartbeat, in ms (0: not at all). */
  watch: WatchSettings;
  listeners: Listeners;
  logs: LogSink;
  /** --kill-signal: the event the app's listeners get when this worker is stopped gracefully. */
  killSignal: NodeJS.Signals;
  /** Ends the worker's process group should the master die (optional: tests run workers without one). */
  reaper?: Reaper;
}

/** What the supervisor forks worker `id` of the cluster `config` describes with. */
export function workerSpec(
  config: ClusterConfig,
  { id, generation, watch, reaper, listeners }: Pick<WorkerSpec, 'id' | 'generation' | 'watch' | 'reaper' | 'listeners'>,
): WorkerSpec {
  return {
    id,
    generation,
    clusterName: config.name,
    entry: config.entry,
    args: config.args,
    env: config.env ?? {},
    settings: {
      waitReady: config.waitReady,
      statsIntervalMs: config.statsIntervalMs,
      heartbeatMs: heartbeatPeriod(watch),
    },
    watch,
    reaper,
    listeners,
    logs: config.logs,
    killSignal: config.killSignal,
  };
}

/**
 * Under `least`, a worker whose loop is silent this long is routed around until it beats again.
 * Well above a busy machine's scheduling hiccups, which would report healthy workers as stalled.
 */
export const STALL_MS = 200;

/** What the master watches each worker's heartbeat for, in the cluster `config` describes. */
export function watchSettings(config: Pick<ClusterConfig, 'balance' | 'watchdogMs' | 'reportBlockedMs'>): WatchSettings {
  return {
    // Only `least` and `fair` route on it: a live signal that a worker's loop has stopped turning.
    stallMs: config.balance === 'least' || config.balance === 'fair' ? STALL_MS : 0,
    watchdogMs: config.watchdogMs,
    reportBlockedMs: config.reportBlockedMs,
  };
}

/** The heartbeat period the watch needs: a quarter of its smallest threshold (0 when it watches for nothing). */
export function heartbeatPeriod({ stallMs, watchdogMs, reportBlockedMs }: WatchSettings): number {
  return stallMs || watchdogMs || reportBlockedMs ? beatPeriod([stallMs, watchdogMs, reportBlockedMs]) : 0;
}

export interface WatchSettings {
  /** A loop silent this long is reported at once, for `least` and `fair`. */
  stallMs: number;
  /** The watchdog: a loop silent this long is reported with its stack, and replaced. */
  watchdogMs: number;
  /** --report-blocked: a loop silent this long has its stack taken, without harm to it. */
  reportBlockedMs: number;
}

/**
 * Every worker leads a process group of its own, so that ending the worker ends whatever it
 * started (endGroup). With the native helper the worker's runtime calls setpgid(0, 0) before the
 * app loads, and stays in the master's session; without it the fork itself makes one (`detached`:
 * setsid), a session of its own. Sessions cost speed on kernels with autogroup scheduling, which
 * shares the CPU fairly between sessions rather than processes: a worker in a session of its own
 * competes as a group of its own with the master and everything else (measured in BENCHMARKS.md:
 * 0.8-0.9x the connections per second). Either way Ctrl-C on a terminal, which signals the
 * foreground process group, reaches the master alone, and it drains the workers in order.
 */
function ownSession(): boolean {
  return nativeHelper() === null;
}

/** What forkWorker gives back: the child (without a pid when the spawn failed), or null and what fork() threw. */
export interface ForkResult {
  child: ChildProcess | null;
  error: unknown;
}

/** Forks the worker's process; never throws (the error is returned, to be reported as a failed boot). */
export function forkWorker(spec: WorkerSpec): ForkResult {
  try {
    const child = fork(spec.entry.path, spec.args, {
      cwd: spec.entry.cwd,
      execArgv: spec.entry.execArgv,
      env: {
        // PM2's instance number (0..N-1), which apps moved from it read: unless set already.
        NODE_APP_INSTANCE: String(spec.id - 1),
        ...appEnvironment(spec.env),
        // After the configuration's: the entry's settings were derived from it (an absolute tsconfig path).
        ...spec.entry.env,
        // As a shell would: the directory by the path it was reached by.
        PWD: spec.entry.cwd,
        CLUSTERD_WORKER_ID: String(spec.id),
        CLUSTERD_CLUSTER_NAME: spec.clusterName,
        [SETTINGS_ENV]: JSON.stringify(spec.settings),
      },
      // fd 4 is the worker's heartbeat pipe: the master reads the silences of its loop there.
      stdio: ['ignore', 'pipe', 'pipe', 'ipc', 'pipe'],
      detached: ownSession(),
    });
    return { child, error: null };
  } catch (error) {
    return { child: null, error };
  }
}

/**
 * fork() failed: no process runs, so this is a failed boot, reported as an exit from `starting`
 * with the errno. Node throws some spawn errors (ENOMEM) and reports the rest (EAGAIN at the
 * process limit, EMFILE, ENOENT) with an 'error' event on the next tick, after handing back a
 * ChildProcess without a pid; 'exit' never comes for it. Either way the exit is emitted
 * asynchronously, once the supervisor listens: `settle` is called with the failure in words.
 */
export function settleFailedFork({ child, error }: ForkResult, cwd: string, settle: (error: string) => void): void {
  const settleWith = (cause: unknown): void => settle(describeSpawnError(cause, cwd));
  if (child === null) {
    process.nextTick(settleWith, error);
    return;
  }
  // With EAGAIN, Node has already opened the stdio pipes and the IPC channel, with nobody at the
  // other end (with EMFILE, none): close whatever there is, or each failed fork leaks descriptors.
  child.once('error', settleWith);
  // Anything after it (the channel closing) is moot, and must not be an unheard 'error'.
  child.on('error', () => {});
  for (const stream of child.stdio ?? []) stream?.destroy();
  if (child.connected) child.disconnect();
}

/**
 * `spawn EAGAIN (resource temporarily unavailable)`: the errno's name and what it means. ENOENT names
 * the working directory when that is what is missing (a deleted release), not node.
 */
export function describeSpawnError(error: unknown, cwd?: string): string {
  const { code, errno, message } = (error ?? {}) as NodeJS.ErrnoException;
  if (typeof code !== 'string') return String(message ?? error);
  if (code === 'ENOENT' && cwd !== undefined && !existsSync(cwd)) return `spawn ENOENT: the working directory ${cwd} does not exist`;
  const meaning = typeof errno === 'number' ? getSystemErrorMap().get(errno)?.[1] : undefined;
  return `spawn ${code}${meaning ? ` (${meaning})` : ''}`;
}
