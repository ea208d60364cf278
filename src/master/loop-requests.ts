// One worker's `clusterd loop` requests: a sequence number and a table of the answers awaited, each
// with its timeout (as Node's lib/internal/cluster/utils.js does its requests). The WorkerProcess owns
// it, hands it the worker's 'NODE_clusterd:loop-reply' messages, and says when the worker exited.
import { performance } from 'node:perf_hooks';
import { ClusterdError } from '../errors.js';
import type { LoopBreakdown } from '../loop/types.js';
import type { MasterMessage } from '../protocol.js';

/**
 * How long past its window a `clusterd loop` measurement is waited for, and then again each time while
 * the worker's loop turns. A fixed 5 s was not enough: a loaded worker (the window read 3.3-7.4 s of
 * wall time for 2 s) or one still booting (its loop blocked by its top-level code, then its window)
 * answered late, and `loop` failed with exit 1 while its loop turned.
 */
const LOOP_ANSWER_MS = 5000;
/** The most a measurement is waited for past its window, however its loop turns (the client waits this long too). */
export const LOOP_ANSWER_MAX_MS = 30_000;

/** What LoopRequests reads of its worker, and how it speaks to it. */
export interface LoopWorker {
  readonly id: number;
  readonly pid: number;
  /** False when the channel is closed (the worker is exiting). */
  send(message: MasterMessage): boolean;
  /** Whether its loop turns now, as its heartbeat says (not blocked): its answer may still come. */
  turning(): boolean;
}

/** One `clusterd loop` window of one worker: asked for, and not answered yet. */
interface LoopRequest {
  resolve: (breakdown: LoopBreakdown) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
  /** Its asker went away and the worker was told to end it; its answer is still on the way. */
  cancelled: boolean;
}

/** The `clusterd loop` requests of one worker: who waits for which answer, each with its timeout. */
export class LoopRequests {
  readonly #worker: LoopWorker;
  /** `clusterd loop` windows asked for and not answered yet, by seq. */
  readonly #loops = new Map<number, LoopRequest>();
  #loopSeq = 0;
  readonly #answerMs: number;
  readonly #answerMaxMs: number;

  /** `answerMs`, `answerMaxMs`: LOOP_ANSWER_MS and LOOP_ANSWER_MAX_MS (shorter in tests). */
  constructor(worker: LoopWorker, { answerMs = LOOP_ANSWER_MS, answerMaxMs = LOOP_ANSWER_MAX_MS } = {}) {
    this.#worker = worker;
    this.#answerMs = answerMs;
    this.#answerMaxMs = answerMaxMs;
  }

  /** A window runs whose asker is still there (one that was cancelled only awaits its answer). */
  get measuring(): boolean {
    return [...this.#loops.values()].some((loop) => !loop.cancelled);
  }

  /** A window is open, or its answer on the way (a cancelled one's too): its hooks run in the worker. */
  get pending(): boolean {
    return this.#loops.size > 0;
  }

  /**
   * Asks the worker where its loop spends the next `durationMs`. One at a time; the answer is waited for
   * 5 s past the window, and 5 s more each time while the worker's loop turns, up to LOOP_ANSWER_MAX_MS:
   * then given up on with ERR_CLUSTERD_TIMEOUT (the caller tells a blocked loop from it).
   */
  measure(durationMs: number, signal?: AbortSignal): Promise<LoopBreakdown> {
    const worker = this.#worker;
    if (this.measuring) return Promise.reject(new ClusterdError('ERR_CLUSTERD_BUSY', `refused: worker ${worker.id}'s loop is being measured already; try again when it finishes`));
    const seq = ++this.#loopSeq;
    const sentAt = performance.now();
    return new Promise((resolve, reject) => {
      const expire = (): void => {
        const waited = performance.now() - sentAt;
        const left = durationMs + this.#answerMaxMs - waited;
        if (worker.turning() && left > 0) {
          loop.timer = setTimeout(expire, Math.min(this.#answerMs, left));
          return;
        }
        this.#loops.delete(seq);
        const turns = worker.turning() ? 'though its loop turns' : 'and its loop does not turn';
        reject(new ClusterdError('ERR_CLUSTERD_TIMEOUT', `worker ${worker.id} did not answer the measurement within ${(waited / 1000).toFixed(1)} s of asking (a ${durationMs} ms window), ${turns}: try again`));
      };
      const timer = setTimeout(expire, durationMs + this.#answerMs);
      const loop: LoopRequest = { resolve, reject, timer, cancelled: false };
      this.#loops.set(seq, loop);
      if (!worker.send({ cmd: 'NODE_clusterd:loop', seq, durationMs })) {
        this.#loops.delete(seq);
        clearTimeout(timer);
        reject(new ClusterdError('ERR_CLUSTERD_WORKER_GONE', `worker ${worker.id} (pid ${worker.pid}) is exiting`));
        return;
      }
      // The asker gone, the window ends now, and the next `loop` may start at once: the worker reads
      // the stop before it, and the hooks come off as it does (its answer, the part measured, comes
      // a moment later: held until then, a retry right away was refused as busy).
      signal?.addEventListener(
        'abort',
        () => {
          if (!this.#loops.has(seq)) return;
          loop.cancelled = true;
          worker.send({ cmd: 'NODE_clusterd:loop-stop', seq });
        },
        { once: true },
      );
    });
  }

  /** The worker's answer to window `seq` (NODE_clusterd:loop-reply). */
  answer(seq: number, breakdown: LoopBreakdown): void {
    const loop = this.#loops.get(seq);
    this.#loops.delete(seq);
    if (loop) {
      clearTimeout(loop.timer);
      loop.resolve(breakdown);
    }
  }

  /** The worker exited: every window still open is rejected. */
  exited(): void {
    const worker = this.#worker;
    for (const [seq, loop] of this.#loops) {
      this.#loops.delete(seq);
      clearTimeout(loop.timer);
      loop.reject(new ClusterdError('ERR_CLUSTERD_WORKER_EXITED', `worker ${worker.id} (pid ${worker.pid}) exited during the measurement`));
    }
  }
}
