// ControlOperations without a master: each operation does what the real one promises, on the
// fake source's workers, and a test replaces any of them to script a failure.
import type { ControlOperations, LogEntry, LoopOutcome, OperationProgress, ProfileOutcome, ScaleOutcome, StackReport, StopOutcome } from '../../../src/master/status.js';
import { noSuchWorker } from '../../../src/control/status-codes.js';
import { UsageError } from '../../../src/errors.js';
import { clusterStatus, worker, type FakeSource } from './fake-source.js';

export type BlockedInfo = StackReport & { time: number; blockedMs: number; pid: number };

/** A tiny but complete .cpuprofile: busyFor on top of (root), 3 samples of 1 ms. */
export const PROFILE = {
  nodes: [
    { id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: -1, columnNumber: -1, scriptId: '0' }, hitCount: 0, children: [2, 3] },
    { id: 2, callFrame: { functionName: 'busyFor', url: 'file:///srv/app/server.js', lineNumber: 11, columnNumber: 2, scriptId: '9' }, hitCount: 2 },
    { id: 3, callFrame: { functionName: '(idle)', url: '', lineNumber: -1, columnNumber: -1, scriptId: '0' }, hitCount: 1 },
  ],
  startTime: 1_000_000,
  endTime: 1_003_000,
  samples: [2, 2, 3],
  timeDeltas: [1000, 1000, 1000],
};

/** A breakdown where a quarter of each second goes to timers. */
export const BREAKDOWN = {
  durationMs: 1000,
  phases: Object.fromEntries(['timers', 'pending', 'poll', 'check', 'close', 'nextTick', 'microtasks', 'idle'].map((phase) => [phase, { ms: phase === 'timers' ? 250 : phase === 'idle' ? 700 : 5, msPerSec: phase === 'timers' ? 250 : phase === 'idle' ? 700 : 5, count: 3 }])),
  iterationsPerSec: 120,
  callbacks: [{ type: 'Timeout', function: 'tick', url: 'file:///srv/app/server.js', line: 20, count: 10, totalMs: 250, maxMs: 30 }],
  overheadPct: 0.4,
} as unknown as NonNullable<LoopOutcome['breakdown']>;

/** A log line; `time` defaults to a fixed instant so output is comparable. */
export function logEntry(workerId: number, message: string, over: Partial<LogEntry> = {}): LogEntry {
  return { time: '2024-01-02T03:04:05.000Z', worker: workerId, pid: 40_000 + workerId, stream: 'stdout', message, ...over };
}

export const SPIN_STACK: StackReport = {
  state: 'blocked',
  stack: [
    { functionName: 'spinForever', url: 'file:///srv/app/server.js', line: 27, column: 5 },
    { functionName: 'listOnTimeout', url: 'node:internal/timers', line: 581, column: 17 },
    { functionName: '', url: '', line: 0, column: 0 },
  ],
};

export class FakeOperations implements ControlOperations {
  readonly source: FakeSource;
  /** Every call, in order: `reload`, `restart 2`, `scale +1`, `stop`, `stack 1`. */
  readonly calls: string[] = [];
  readonly logs: LogEntry[] = [];
  readonly logListeners = new Set<(entry: LogEntry) => void>();
  readonly blocked = new Map<number, BlockedInfo>();
  readonly stacks = new Map<number, StackReport>();
  generation = 1;
  #graceMs = 1_000;
  /** Called by stop() after it is recorded (a test kills its stand-in master here). */
  onStop: () => void = () => {};

  constructor(source: FakeSource) {
    this.source = source;
  }

  /** The fake master's --grace: what Stop answers, and what its status says up front (unless a test took that out). */
  get graceMs(): number {
    return this.#graceMs;
  }

  set graceMs(graceMs: number) {
    this.#graceMs = graceMs;
    if (this.source.current.stopTerms) this.source.update({ ...this.source.current, stopTerms: { graceMs } });
  }

  /** Replaces each worker in turn, as Operations.reload reports it. */
  reload = async ({ parallel }: { parallel: number }, onProgress: (progress: OperationProgress) => void): Promise<{ generation: number; replaced: number }> => {
    this.calls.push(`reload ${parallel}`);
    const generation = ++this.generation;
    const ids = this.#ids();
    for (const id of ids) this.#replace(id, generation, onProgress);
    return { generation, replaced: ids.length };
  };

  restart = async (id: number, onProgress: (progress: OperationProgress) => void): Promise<{ pid: number }> => {
    this.calls.push(`restart ${id}`);
    this.#check(id);
    return { pid: this.#replace(id, this.generation, onProgress) };
  };

  /** `N`, `+K` or `-K`, never below one worker; changes the fake source's worker count. */
  scale = async (spec: string): Promise<ScaleOutcome> => {
    this.calls.push(`scale ${spec}`);
    const match = /^([+-]?)(\d+)$/.exec(spec);
    if (!match) throw new UsageError(`Expected a worker count N, +K or -K, got \`${spec}\``);
    const now = this.#ids().length;
    const amount = Number(match[2]);
    const target = match[1] === '+' ? now + amount : match[1] === '-' ? now - amount : amount;
    if (target < 1) throw new UsageError(`cannot scale ${this.source.current.name} to ${target} workers: at least one worker must run (now ${now})`);
    this.source.update(clusterStatus(this.source.current.name, Array.from({ length: target }, (_, i) => worker(i + 1))));
    return { workers: target, killed: [] };
  };

  stop = (): { graceMs: number } => {
    this.calls.push('stop');
    this.onStop();
    return { graceMs: this.#graceMs };
  };

  /** How the fake's stop went, once a test settles it (at once by default: every worker drained). */
  stopOutcome: Promise<StopOutcome> = Promise.resolve({ exitCode: 0, killed: [] });

  stopped = (): Promise<StopOutcome> => this.stopOutcome;

  stack = async (id: number): Promise<StackReport> => {
    this.calls.push(`stack ${id}`);
    this.#check(id);
    return this.stacks.get(id) ?? { state: 'idle', stack: [] };
  };

  profile = async (id: number, { durationMs }: { durationMs: number; intervalUs: number }): Promise<ProfileOutcome> => {
    this.calls.push(`profile ${id} ${durationMs}`);
    this.#check(id);
    const stack = this.stacks.get(id);
    return stack?.state === 'blocked' ? { blocked: { ...stack, blockedMs: 5000 } } : { profile: PROFILE };
  };

  loop = async (id: number, { durationMs }: { durationMs: number }): Promise<LoopOutcome> => {
    this.calls.push(`loop ${id} ${durationMs}`);
    this.#check(id);
    const stack = this.stacks.get(id);
    return stack?.state === 'blocked' ? { blocked: { ...stack, blockedMs: 5000 } } : { breakdown: BREAKDOWN };
  };

  lastBlocked = (id: number): BlockedInfo | null => this.blocked.get(id) ?? null;

  recentLogs = (workerId?: number): LogEntry[] => (workerId === undefined ? [...this.logs] : this.logs.filter((entry) => entry.worker === workerId));

  followLogs = (listener: (entry: LogEntry) => void): (() => void) => {
    this.logListeners.add(listener);
    return () => this.logListeners.delete(listener);
  };

  /** A worker writes a line: kept, and sent to followers. */
  log(entry: LogEntry): void {
    this.logs.push(entry);
    for (const listener of [...this.logListeners]) listener(entry);
  }

  #ids(): number[] {
    return this.source.current.workers.map((w) => w.id);
  }

  #check(id: number): void {
    if (!this.#ids().includes(id)) throw noSuchWorker(id, this.source.current.name, this.#ids());
  }

  #replace(id: number, generation: number, onProgress: (progress: OperationProgress) => void): number {
    const old = 40_000 + id;
    const pid = 50_000 + id;
    onProgress({ id, phase: 'starting', pid, generation, message: `worker ${id}: starting generation ${generation} (pid ${pid})` });
    onProgress({ id, phase: 'draining', pid: old, generation, message: `worker ${id}: draining pid ${old}` });
    onProgress({ id, phase: 'replaced', pid, generation, message: `worker ${id}: replaced by pid ${pid}` });
    return pid;
  }
}
