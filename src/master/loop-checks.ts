// The one timer every LoopWatch's checks share (loop-watch.ts): a timer per worker for its checks
// woke the master once per worker per level, with 16 workers and the default --report-blocked 100ms
// 183 times a second and 4% of a core while idle; sharing one, and running a check with an earlier
// one when it is due soon after it, the master wakes about once per smallest level in all.
import { MAX_TIMER_MS } from '../options.js';

/** Now on the clock the beats carry (process.hrtime: CLOCK_MONOTONIC), in ms. */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** A check, told when it was due (monotonic ms): it may be running before then. */
export type Check = (at: number) => void;

/**
 * One timer for the checks of every watch, set for the earliest. When it fires, every check due by
 * then runs, and with it those due within their `early` ms: a worker whose loop turns has written a
 * newer beat since, so its early check costs a read and sets it again from that beat, and the
 * checks of all workers fall into one wake-up. A check for a silence (`early` 0) runs when due.
 */
export class Checks {
  readonly #due = new Map<Check, { at: number; early: number }>();
  #timer: NodeJS.Timeout | null = null;
  #timerAt = Infinity;
  /** Checks are running: the timer is set once they are done. */
  #firing = false;

  /** Runs `check` at `at` (monotonic ms), or up to `early` ms before it; replaces its pending time. */
  set(check: Check, at: number, early: number): void {
    this.#due.set(check, { at, early });
    if (!this.#firing && at < this.#timerAt) this.#arm(at);
  }

  delete(check: Check): void {
    this.#due.delete(check);
  }

  has(check: Check): boolean {
    return this.#due.has(check);
  }

  /** For tests: times the timer fired (the master's wake-ups for checks), and checks run. */
  fired = 0;
  ran = 0;

  #arm(at: number): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => this.#fire(), Math.min(MAX_TIMER_MS, Math.max(1, Math.ceil(at - monotonicMs())))).unref();
  }

  #fire(): void {
    this.#timer = null;
    this.#timerAt = Infinity;
    this.fired++;
    // Node's timers count whole ms: one may fire a fraction of a ms before its check is due.
    const now = monotonicMs() + 1;
    const ready: Array<[Check, { at: number; early: number }]> = [];
    for (const entry of this.#due) if (entry[1].at - entry[1].early <= now) ready.push(entry);
    this.#firing = true;
    try {
      for (const [check, due] of ready) {
        // A check run before this one may have closed or set another watch.
        if (this.#due.get(check) !== due) continue;
        this.#due.delete(check);
        this.ran++;
        check(due.at);
      }
    } finally {
      // Whatever a check's listeners did, the others keep their timer.
      this.#firing = false;
      let next = Infinity;
      for (const { at } of this.#due.values()) if (at < next) next = at;
      if (next < this.#timerAt) this.#arm(next);
    }
  }
}

/** Every watch's checks, in this process. */
export const checks = new Checks();
