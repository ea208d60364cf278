// The supervisor owns the desired state (how many workers, which of them must be replaced)
// and one reconcile step that makes the running set match it. Exits, restarts, scaling and
// replacements are changes to that state followed by reconcile(), never bespoke code paths.
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { DEFAULT_BACKOFF } from './backoff.js';
import { IdCounts } from './id-counts.js';
import { Listeners } from './listeners.js';
import type { ExclusiveAddress } from './exclusive-listens.js';
import { buildStatus, type ClusterStatus, type ControlSource, type StopOutcome } from './status.js';
import type { ReplaceRequest } from './want.js';
import { newSlot, type Slot } from './slot.js';
import { Replacements } from './replacements.js';
import { Restarts } from './restarts.js';
import { GracefulStop, drain } from './graceful-stop.js';
import { BlockedSites } from './blocked-sites.js';
import { Reaper } from './reaper.js';
import { WorkerProcess, type WorkerExit } from './worker.js';
import { isUp } from './worker-state.js';
import { RUNTIME_PREFIXES } from './blocking-report.js';
import { BlockReports } from './block-reports.js';
import { ChangeListeners } from './change-listeners.js';
import { watchSettings, workerSpec, type WatchSettings } from './worker-fork.js';
import { ClusterdError, ERROR_CODES } from '../errors.js';
import { ExitCode, type ExitCodeValue } from '../exit-codes.js';
import type { ClusterConfig } from './cluster-config.js';
import { Exits } from './exits.js';
import type { OwnListener } from './listen-failure.js';
import type { SockName } from '../protocol.js';
import type { LoopSample } from '../loop/types.js';

export type Phase = 'booting' | 'running' | 'stopping' | 'stopped';

export { FLUSH_SHARE_OF_GRACE } from './graceful-stop.js';

/**
 * Events: 'ready' (every worker ready for the first time), 'fatal' (ClusterdError: the app
 * cannot run; the cluster is being stopped), 'stopped' (exit code, StopOutcome), 'sample' (worker, LoopSample),
 * 'worker-ready' (worker: it got ready, and is given traffic from now on),
 * 'blocking' (worker, { frames, blockedMs, lasted }: --report-blocked caught its loop blocked, unharmed; `lasted`
 *   resolves with the block's whole length once the loop turns),
 * 'boot-failed' (id, BootError: a worker of that id failed to boot and is retried),
 * 'change' (a sample arrived
 * or a worker changed state: what the control plane's Watch follows).
 */
export class Supervisor extends EventEmitter implements ControlSource {
  readonly config: ClusterConfig;
  readonly sockets: Listeners;
  readonly startedAt = Date.now();
  /** When it was started on the monotonic clock: uptime holds when the wall clock is stepped back. */
  readonly #startedTick = performance.now();
  /** Where each worker id's loop was caught blocked (--report-blocked, and the watchdog's catches). */
  readonly blockedSites = new BlockedSites({ ownPrefixes: RUNTIME_PREFIXES });
  #phase: Phase = 'booting';
  #desired: number;
  /** The generation new workers are forked as; a reload bumps it. */
  #generation = 1;
  readonly #slots = new Map<number, Slot>();
  /** Times each worker id was restarted after an unexpected exit; a scale-down drops the id (its count stays in the total). */
  readonly #restarts = new IdCounts();
  /** Times each worker id was replaced for --max-memory: planned replacements, not restarts, counted as those are. */
  readonly #memoryReplacements = new IdCounts();
  /** Every worker process alive, whatever its role: current, successor or draining. */
  readonly #live = new Set<WorkerProcess>();
  #ownListeners: readonly OwnListener[] = [];
  /** Each id's replacement under way (reload, restart, memory limit): its successor and its want. */
  readonly #replacements: Replacements;
  /** The watchdog's catches and --report-blocked's reports: which workers restart without backoff. */
  readonly #blockReports: BlockReports;
  /** Each id's restart after a crash or a failed boot: its backoff, its log line, its timer. */
  readonly #restarting: Restarts;
  /** The cluster's stop: its grace timer and the exit code it ends with. */
  readonly #stop: GracefulStop;
  /** What the master watches each worker's heartbeat for. */
  readonly #watch: WatchSettings;
  /** What each worker's exit means for its id, and its failure to bind an address. */
  readonly #exits: Exits;
  /** Ends every worker's process group should the master die (created with the first worker). */
  #reaper: Reaper | undefined;
  /** Once stopped: its exit code and the workers killed rather than drained. */
  #stopOutcome: StopOutcome | null = null;

  constructor(config: ClusterConfig) {
    super();
    this.config = config;
    this.#desired = config.instances;
    this.#watch = watchSettings(config);
    this.#replacements = new Replacements({
      logs: config.logs,
      phase: () => this.#phase,
      slot: (id) => this.#slots.get(id),
      spawn: (slot, role) => this.#spawn(slot, role),
      drain: (worker) => this.drain(worker),
      restartNow: (slot) => this.#restarting.now(slot),
      changed: () => this.emit('change'),
    });
    this.#blockReports = new BlockReports({
      logs: config.logs,
      blockedSites: this.blockedSites,
      blocking: (worker, report) => this.emit('blocking', worker, report),
      changed: () => this.emit('change'),
    });
    this.#restarting = new Restarts({
      config,
      backoff: config.backoff ?? DEFAULT_BACKOFF,
      phase: () => this.#phase,
      slots: () => this.#slots.values(),
      workers: () => this.workers(),
      ownListeners: () => this.#ownListeners,
      restartAtOnce: (worker) => this.#blockReports.restartAtOnce(worker),
      restarted: (id) => this.#restarts.add(id),
      reconcile: () => this.#reconcile(),
      fatal: (error) => this.#fatal(error),
      bootFailed: (id, failure) => this.emit('boot-failed', id, failure),
    });
    // Asked for each sticky connection: the same array until a scale changes the count.
    let ids: number[] = [];
    this.sockets = new Listeners({
      mode: config.balance,
      onFailure: (failure, worker) => this.#exits.listenFailed(worker as unknown as WorkerProcess, failure),
      warn: (event, message, data) => config.logs.event(event, message, data, 'warn'),
      // A server the app starts after its start-up (not waited for at ready) has as long as a worker has to boot.
      releaseAfterMs: config.listenTimeoutMs,
      ids: () => (ids.length === this.#desired ? ids : (ids = Array.from({ length: this.#desired }, (_, index) => index + 1))),
      ownListeners: () => this.#ownListeners,
    });
    this.#stop = new GracefulStop({
      graceMs: config.graceMs,
      sockets: this.sockets,
      phase: () => this.#phase,
      live: () => this.#live,
      slots: () => this.#slots.values(),
      clearRestart: (slot) => this.#restarting.clear(slot),
      stopping: () => {
        this.#phase = 'stopping';
        this.emit('stopping');
      },
      stopped: (exitCode, killed) => {
        this.#phase = 'stopped';
        this.#stopOutcome = { exitCode, killed };
        this.emit('stopped', exitCode, this.#stopOutcome);
      },
    });
    this.#exits = new Exits({
      config,
      stop: this.#stop,
      replacements: this.#replacements,
      restarting: this.#restarting,
      phase: () => this.#phase,
      slot: (id) => this.#slots.get(id),
      ownListeners: () => this.#ownListeners,
      changed: () => this.emit('change'),
    });
  }

  get phase(): Phase {
    return this.#phase;
  }

  /** Once the cluster has stopped: how (the exit code, the workers killed rather than drained); null before. */
  get stopOutcome(): StopOutcome | null {
    return this.#stopOutcome;
  }

  get desired(): number {
    return this.#desired;
  }

  get generation(): number {
    return this.#generation;
  }

  /** The serving worker of each id, by id. */
  workers(): WorkerProcess[] {
    return [...this.#slots.values()].flatMap((slot) => (slot.worker ? [slot.worker] : [])).sort((a, b) => a.id - b.id);
  }

  /** The processes the master spawned itself: every live worker and the reaper (libuv waits for them). */
  ownPids(): number[] {
    return [...[...this.#live].map((worker) => worker.pid), ...(this.#reaper?.pid ? [this.#reaper.pid] : [])];
  }

  /**
   * How long since the master started, by the monotonic clock: a status's uptime is how a handle
   * orders the statuses it gets (a backward step of the wall clock made every later one look older).
   */
  get uptimeMs(): number {
    return Math.round(performance.now() - this.#startedTick);
  }

  /** Every live worker process, including successors still booting and old workers draining. */
  processes(): WorkerProcess[] {
    return [...this.#live];
  }

  /** Every worker id the cluster has, by id: those waiting out a restart's backoff included. */
  ids(): number[] {
    return [...this.#slots.keys()].sort((a, b) => a - b);
  }

  slot(id: number): Slot | undefined {
    return this.#slots.get(id);
  }

  /** Times worker `id` was restarted after an unexpected exit since it was last scaled up to (an id scaled away is dropped). */
  restarts(id: number): number {
    return this.#restarts.get(id);
  }

  /** The worker ids restarted at least once since they were last scaled up to. */
  restartedIds(): number[] {
    return this.#restarts.ids();
  }

  /** Times worker `id` was replaced for --max-memory since it was last scaled up to (an id scaled away is dropped). */
  memoryReplacements(id: number): number {
    return this.#memoryReplacements.get(id);
  }

  /** The worker ids replaced for --max-memory at least once. */
  memoryReplacedIds(): number[] {
    return this.#memoryReplacements.ids();
  }

  /** Every worker id's memory replacements together: never goes down. */
  memoryReplacementsTotal(): number {
    return this.#memoryReplacements.total();
  }

  /** A --max-memory replacement of worker `id` is done (the new worker serves, the old one drained). */
  countMemoryReplacement(id: number): void {
    this.#memoryReplacements.add(id);
    this.emit('change');
  }

  /** Every worker id's restarts together: never goes down. */
  restartsTotal(): number {
    return this.#restarts.total();
  }

  /** Where clients connect: the addresses the master binds, then those a worker binds by itself (they name it). */
  addresses(): Array<SockName | ExclusiveAddress> {
    return this.sockets.addresses();
  }

  /** Forks the workers; `ownListeners` are the master's own, named in a worker's failure to bind one of their addresses. */
  start({ ownListeners = [] }: { ownListeners?: readonly OwnListener[] } = {}): void {
    this.#ownListeners = ownListeners;
    this.#reaper ??= new Reaper();
    this.#reconcile();
  }

  /**
   * Calls `listener` on every 'change' until the returned function is called. One per open Watch
   * stream, dashboard feed and operation: a set of their own, so that eleven clients watching at once
   * are not mistaken by Node for a leak (MaxListenersExceededWarning).
   */
  onChange(listener: () => void): () => void {
    return this.#changeListeners.add(listener);
  }

  readonly #changeListeners = new ChangeListeners(this);

  /** A snapshot of the cluster for the control plane. */
  status(): ClusterStatus {
    return buildStatus(this);
  }

  /** Changes the number of workers; extra ones (highest ids first) drain and leave. */
  scale(count: number): void {
    this.#desired = count;
    this.#reconcile();
  }

  /** Starts the next generation: workers forked from now on load the entry anew. */
  nextGeneration(): number {
    return ++this.#generation;
  }

  /** Goes back to a generation after a reload whose new code failed to boot. */
  revertGeneration(generation: number): void {
    this.#generation = generation;
  }

  /**
   * Asks for the worker of one id to be replaced without a gap (reload, restart, memory limit):
   * Replacements.replace (replacements.ts) says how, and what the promise settles with.
   */
  replace(id: number, request: ReplaceRequest = {}): Promise<WorkerProcess> {
    return this.#replacements.replace(id, request);
  }

  /**
   * Calls off the replacement of `id` while its successor still boots (a reload that failed on
   * another id): the successor is ended, the replacement rejects, and the old worker serves on.
   * Returns whether there was one to call off; one already ready has taken over.
   */
  abandonReplacement(id: number): boolean {
    const successor = this.#slots.get(id)?.successor;
    if (successor?.state !== 'starting') return false;
    successor.kill();
    return true;
  }

  /** Stops one worker gracefully and resolves once it exited (killed after --grace). */
  drain(worker: WorkerProcess): Promise<void> {
    return drain(worker, this.config.graceMs);
  }

  /**
   * Graceful stop: stop accepting, let every worker drain, kill those still busy after
   * --grace. A second call forces it: every worker is killed at once.
   */
  stop(exitCode: ExitCodeValue = ExitCode.OK): void {
    this.#stop.stop(exitCode);
  }

  /** Makes the running set match the desired one. */
  #reconcile(): void {
    if (this.#phase === 'stopping' || this.#phase === 'stopped') return;
    for (let id = 1; id <= this.#desired; id++) {
      let slot = this.#slots.get(id);
      if (!slot) {
        slot = newSlot(id);
        this.#slots.set(id, slot);
      }
      if (!slot.worker && !slot.restartTimer) this.#spawn(slot, 'worker');
    }
    for (const slot of this.#slots.values()) {
      if (slot.id <= this.#desired) continue;
      this.#restarting.clear(slot);
      this.#slots.delete(slot.id);
      this.#forgetCounts(slot.id);
      slot.want?.reject(new ClusterdError('ERR_CLUSTERD_NO_WORKER', `worker ${slot.id} was scaled away before it was replaced`));
      slot.want = null;
      for (const worker of [slot.successor, slot.worker]) if (worker) void this.drain(worker);
    }
    this.emit('change');
  }

  /**
   * An id scaled away is no longer the cluster's: one scaled back is a new worker and starts from 0
   * (its restarts, memory replacements, blocks and blocking sites). The totals keep what it counted.
   */
  #forgetCounts(id: number): void {
    this.#restarts.drop(id);
    this.#memoryReplacements.drop(id);
    this.blockedSites.drop(id);
  }

  #spawn(slot: Slot, role: 'worker' | 'successor'): WorkerProcess {
    const { config } = this;
    const worker = new WorkerProcess(workerSpec(config, { id: slot.id, generation: this.#generation, watch: this.#watch, reaper: this.#reaper, listeners: this.sockets }));
    slot[role] = worker;
    this.#live.add(worker);
    const bootTimer = setTimeout(() => {
      if (worker.state !== 'starting') return;
      worker.stderrTail.push(`(clusterd: not ready after ${config.listenTimeoutMs} ms; see ${config.listenTimeoutGiven ?? '--listen-timeout'})`);
      worker.kill();
    }, config.listenTimeoutMs);
    worker.once('ready', () => {
      clearTimeout(bootTimer);
      this.sockets.ready(worker);
      this.emit('worker-ready', worker);
      this.#onReady();
      if (slot.successor === worker) void this.#replacements.promote(slot, worker);
      else if (slot.worker === worker) this.#replacements.advance(slot);
    });
    this.#blockReports.follow(worker);
    worker.on('sample', (sample: LoopSample) => {
      this.emit('sample', worker, sample);
      this.emit('change');
    });
    // Its app closed every server it listened on, or listens again: counted ready or not.
    worker.on('listening', () => this.emit('change'));
    worker.once('exit', (exit: WorkerExit) => {
      clearTimeout(bootTimer);
      this.#live.delete(worker);
      this.#exits.onExit(slot, worker, exit);
    });
    this.emit('change');
    return worker;
  }

  #onReady(): void {
    // The app can boot: whatever failed before (a dependency down, a broken deploy) has passed.
    for (const slot of this.#slots.values()) slot.bootFailures = 0;
    this.emit('change');
    // Every worker has booted (one may have closed its servers since: it is past its boot, not ready).
    if (this.#phase === 'booting' && this.workers().length === this.#desired && this.workers().every((w) => isUp(w.state))) {
      this.#phase = 'running';
      this.emit('ready');
    }
  }

  #fatal(error: ClusterdError): void {
    this.emit('fatal', error);
    this.stop(ERROR_CODES[error.code].exitCode);
  }
}
