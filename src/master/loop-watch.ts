// The master's watch on one worker's heartbeat (src/loop/heartbeat.ts): the silence since its last
// beat says whether its event loop turns. Silence past a level turns into events:
//
//   'stall' (silentMs)            silent past stallMs (once per episode); `least` and `fair` route around it
//   'resume'                      the first beat after a stall
//   'end' (episode, silentMs)     the first beat after a silence that passed a threshold: how long it lasted
//   'silent' (threshold, episode) silent past one of `thresholds` (once each per episode): the caller
//                                 takes the stack (--report-blocked, the watchdog) and, when the capture
//                                 comes back, asks current(episode) whether the loop was still silent
//   'close'                       the pipe ended (the worker exited, or the app closed fd 4)
//
// An episode ends with the next beat. No polling: one timer per worker, set to the smallest level and
// pushed back by each beat (Timeout#refresh, which costs no wake-up), so while the loop turns the
// master wakes only to read beats. A poll every few ms cost the master 2-3% of a core with 2 workers
// (BENCHMARKS.md). When the timer fires, the judgement waits for the check phase (setImmediate): the
// poll phase before it reads any beat already sitting in the pipe, so a master that was itself busy
// does not take its own lateness for the worker's silence.
import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';

export interface LoopWatchOptions {
  /** Report a stall past this silence, in ms; 0: never. */
  stallMs: number;
  /** Silences (ms) at which to emit 'silent'; 0s are ignored. */
  thresholds: readonly number[];
}

export class LoopWatch extends EventEmitter {
  readonly #options: LoopWatchOptions;
  /** Every level (stallMs and thresholds), ascending, without duplicates. */
  readonly #levels: number[];
  /** The pending judgement: the timer for the first level (refreshed by beats), or for a later one. */
  #timer: NodeJS.Timeout | null = null;
  #timerForFirst = false;
  #lastBeat = performance.now();
  /** Beats seen at all: a worker whose heartbeat never started is not judged. */
  #beating = false;
  #stalled = false;
  #episode = 0;
  /** Thresholds already passed in this episode. */
  readonly #passed = new Set<number>();
  #closed = false;

  constructor(stream: Readable, options: LoopWatchOptions) {
    super();
    this.#options = options;
    this.#levels = [...new Set([options.stallMs, ...options.thresholds].filter((ms) => ms > 0))].sort((a, b) => a - b);
    stream.on('data', () => this.#beat());
    // EPIPE / ECONNRESET when the worker dies: 'close' follows.
    stream.on('error', () => {});
    stream.once('close', () => this.close());
  }

  /** How long the worker's loop has been silent, in ms (0 before its first beat). */
  get silentMs(): number {
    return this.#beating ? Math.round(performance.now() - this.#lastBeat) : 0;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** How long silence `episode` lasts: resolves at its end, or with the silence so far when the pipe closes first. */
  lasted(episode: number): Promise<number> {
    if (!this.current(episode)) return Promise.resolve(this.silentMs);
    return new Promise((resolve) => {
      const onEnd = (ended: number, silentMs: number): void => {
        if (ended !== episode) return;
        this.off('close', onClose);
        this.off('end', onEnd);
        resolve(silentMs);
      };
      const onClose = (): void => {
        this.off('end', onEnd);
        resolve(this.silentMs);
      };
      this.on('end', onEnd);
      this.once('close', onClose);
    });
  }

  /** Whether the silence `episode` (from a 'silent' event) is still going on: no beat since. */
  current(episode: number): boolean {
    return !this.#closed && episode === this.#episode;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.emit('close');
  }

  #beat(): void {
    const now = performance.now();
    if (this.#passed.size > 0) this.emit('end', this.#episode, Math.round(now - this.#lastBeat));
    this.#beating = true;
    this.#lastBeat = now;
    if (this.#passed.size > 0 || this.#stalled) this.#episode++;
    this.#passed.clear();
    if (this.#stalled) {
      this.#stalled = false;
      this.emit('resume');
    }
    this.#armFirst();
  }

  /** Arms the judgement for the first level after a beat: a refresh while the first level's timer is pending. */
  #armFirst(): void {
    const first = this.#levels[0];
    if (first === undefined || this.#closed) return;
    if (this.#timer && this.#timerForFirst) {
      this.#timer.refresh();
      return;
    }
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#due(), first).unref();
    this.#timerForFirst = true;
  }

  #due(): void {
    // After this iteration's poll phase, which reads what the worker has already written.
    setImmediate(() => this.#judge()).unref();
  }

  #judge(): void {
    if (this.#closed || !this.#beating) return;
    const beatAt = this.#lastBeat;
    const silentMs = performance.now() - beatAt;
    // A beat came between the timer and now: it has armed the first level again.
    if (silentMs < this.#levels[0]!) return;
    const { stallMs, thresholds } = this.#options;
    if (stallMs > 0 && !this.#stalled && silentMs >= stallMs) {
      this.#stalled = true;
      this.emit('stall', Math.round(silentMs));
    }
    for (const threshold of thresholds) {
      if (threshold <= 0 || silentMs < threshold || this.#passed.has(threshold)) continue;
      this.#passed.add(threshold);
      this.emit('silent', threshold, this.#episode);
    }
    // Closed by a listener, or a beat came while they ran (and armed the first level).
    if (this.#closed || this.#lastBeat !== beatAt) return;
    if (this.#timer) clearTimeout(this.#timer);
    const next = this.#levels.find((level) => level > silentMs);
    this.#timer = next === undefined ? null : setTimeout(() => this.#due(), Math.max(1, Math.ceil(next - silentMs))).unref();
    this.#timerForFirst = false;
  }
}

/** The heartbeat period for these thresholds: a quarter of the smallest, from 10 to 250 ms. */
export function beatPeriod(thresholds: readonly number[]): number {
  const smallest = Math.min(...thresholds.filter((ms) => ms > 0));
  return Number.isFinite(smallest) ? Math.min(250, Math.max(10, Math.floor(smallest / 4))) : 250;
}
