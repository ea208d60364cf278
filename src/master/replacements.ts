// Replacing a worker id without a gap (reload, restart, --max-memory): a successor is forked, it
// takes the id over once it is ready, and the old worker drains. Requests for the same id merge into
// the slot's Want (want.ts). The Supervisor owns one Replacements, calls advance() and promote() as
// its workers get ready and exit, and gives it what it needs through ReplacementHost.
import { ClusterdError } from '../errors.js';
import type { LogSink } from './logs.js';
import type { Slot } from './slot.js';
import type { Phase } from './supervisor.js';
import { Want, type ReplaceRequest } from './want.js';
import type { WorkerProcess } from './worker.js';
import { isUp } from './worker-state.js';

/** What Replacements reads of the supervisor, and what it has it do. */
export interface ReplacementHost {
  readonly logs: LogSink;
  phase(): Phase;
  /** The cluster's slot of an id; none once the id is scaled away. */
  slot(id: number): Slot | undefined;
  /** Forks a worker for the slot, as its serving worker or as its successor. */
  spawn(slot: Slot, role: 'worker' | 'successor'): WorkerProcess;
  /** Stops one worker gracefully and resolves once it exited (killed after --grace). */
  drain(worker: WorkerProcess): Promise<void>;
  /** The restart an id waits for (its backoff after a crash) is made now: counted, its timer called off. */
  restartNow(slot: Slot): void;
  /** A worker changed roles (the supervisor's 'change'). */
  changed(): void;
}

/** The replacements of the cluster's worker ids: each id's successor, and the want it meets. */
export class Replacements {
  readonly #host: ReplacementHost;
  /** Successors called off for a newer one (#supersede): their exit is no failed boot. */
  readonly #superseded = new WeakSet<WorkerProcess>();

  constructor(host: ReplacementHost) {
    this.#host = host;
  }

  /**
   * Asks for the worker of one id to be replaced without a gap: a successor is forked, and once it
   * is ready the old worker leaves balancing and drains within --grace. Requests for the same id
   * merge (see want.ts): one successor meets them all, so a memory-limit replacement during a
   * reload is the reload's replacement of that id. A reload that joins a successor still booting an
   * older generation (a memory replacement forked before it) has that successor called off and one of
   * the new generation forked instead: the id is replaced once, not twice. Resolves with the worker
   * that meets the request once the old one has drained; rejects with a BootError (the old worker keeps serving) when the
   * successor fails to boot, and with ERR_CLUSTERD_NO_WORKER when the id goes away (scale, stop).
   * An id waiting out its restart backoff after a crash is started now (the operator who asks has
   * fixed the cause, or wants to see it fail): that worker meets the request once it is ready.
   */
  replace(id: number, request: ReplaceRequest = {}): Promise<WorkerProcess> {
    if (this.#host.phase() === 'stopping' || this.#host.phase() === 'stopped') return Promise.reject(new ClusterdError('ERR_CLUSTERD_STOPPING', 'the cluster is stopping'));
    const slot = this.#host.slot(id);
    if (!slot || (!slot.worker && !slot.successor && !slot.restartTimer)) return Promise.reject(new ClusterdError('ERR_CLUSTERD_NO_WORKER', `there is no worker ${id} to replace`));
    slot.want ??= new Want();
    const met = slot.want.add(request);
    if (slot.restartTimer) {
      this.#host.restartNow(slot);
      // Asked for, as a reload or restart of a running id is (promote()): its crash count starts afresh.
      slot.attempt = 0;
      request.onProgress?.('starting', this.#host.spawn(slot, 'worker'));
      return met;
    }
    // Joining a replacement already under way: it serves this request too, from where it is, unless
    // it boots code older than the request asks for.
    if (slot.successor && !slot.want.servedBy(slot.successor)) this.#supersede(slot, slot.successor, slot.want.generation);
    else if (slot.successor) request.onProgress?.('starting', slot.successor);
    this.advance(slot);
    return met;
  }

  /** Whether `successor` was called off for a newer one (#supersede): its exit is no failed boot. */
  superseded(successor: WorkerProcess): boolean {
    return this.#superseded.has(successor);
  }

  /**
   * Ends a successor still booting that no longer meets its slot's want (a reload came after it was
   * forked): once it has exited, advance() forks one that meets every request, and none of them is
   * rejected for it.
   */
  #supersede(slot: Slot, successor: WorkerProcess, generation: number): void {
    if (this.#superseded.has(successor)) return;
    this.#superseded.add(successor);
    this.#host.logs.event(
      'replacement-superseded',
      `worker ${slot.id}: its replacement pid ${successor.pid} (generation ${successor.generation}) is called off for one of generation ${generation}, which meets both requests`,
      { worker: slot.id, pid: successor.pid, generation },
    );
    successor.kill();
  }

  /**
   * Moves a slot's replacement on: done when its serving worker meets the want (and nothing is
   * booting for it), else a successor is forked once the serving worker is ready (a worker that a
   * crash restarts meets the want by itself when it gets ready).
   */
  advance(slot: Slot): void {
    const want = slot.want;
    if (!want || slot.successor || this.#host.phase() !== 'running' && this.#host.phase() !== 'booting') return;
    if (want.metBy(slot.worker)) {
      slot.want = null;
      want.resolve(slot.worker!);
      return;
    }
    // One that closed every server it listened on has booted too: a reload replaces it.
    if (!slot.worker || !isUp(slot.worker.state)) return;
    want.progress('starting', this.#host.spawn(slot, 'successor'));
  }

  /** The successor is ready: it serves the id, the old worker drains, and the want moves on. */
  async promote(slot: Slot, successor: WorkerProcess): Promise<void> {
    const old = slot.worker;
    slot.successor = null;
    slot.worker = successor;
    // The id's figures until the successor's first sample: the old worker's latest (one that had none
    // yet passes on its own predecessor's, so that no chain of workers is kept, with stats off none).
    if (old && successor.history.length === 0) successor.predecessor = old.history.length > 0 ? old : old.predecessor;
    // The requests this successor meets are its own from now on: one that comes while the old worker
    // drains (a reload just after a memory replacement) is a new want, met by the next successor, so
    // that each requester hears of the worker that met its request (the memory limit named the
    // reload's worker, and took it for a memory replacement).
    const want = slot.want?.servedBy(successor) ? slot.want : null;
    if (want) slot.want = null;
    // A planned replacement (reload, restart, a memory replacement) starts the id's crash count
    // afresh: crashes before a deploy must not make the first crash after it wait 15 s.
    slot.attempt = 0;
    this.#host.changed();
    if (old && old.state !== 'exited') {
      (want ?? slot.want)?.progress('draining', old);
      await this.#host.drain(old);
    }
    if (want) this.#settle(slot, want, successor);
    else slot.want?.progress('replaced', successor);
    this.advance(slot);
  }

  /** The want a successor was promoted for, once the old worker has drained: met, or the slot's again. */
  #settle(slot: Slot, want: Want, successor: WorkerProcess): void {
    if (this.#host.phase() === 'stopping' || this.#host.phase() === 'stopped') want.reject(new ClusterdError('ERR_CLUSTERD_STOPPING', 'the cluster is stopping'));
    else if (this.#host.slot(slot.id) !== slot) want.reject(new ClusterdError('ERR_CLUSTERD_NO_WORKER', `worker ${slot.id} was scaled away before it was replaced`));
    else if ((slot.worker === successor && want.metBy(successor)) || successor.stoppingAt !== null) {
      // Serving, or replaced meanwhile by the next want's successor (drained, not crashed): it met these.
      want.progress('replaced', successor);
      want.resolve(successor);
    } else if (slot.want) {
      // It died while the old worker drained: the worker its crash restarts meets the want instead.
      slot.want.absorb(want);
    } else slot.want = want;
  }
}
