// The master's watch on one worker's heartbeat (src/loop/heartbeat.ts): the silence since its last
// beat says whether its event loop turns. A poll every `pollMs` turns silence into events:
//
//   'stall' (silentMs)            silent past stallMs (once per episode); `least` and `fair` route around it
//   'resume'                      the first beat after a stall
//   'end' (episode, silentMs)     the first beat after a silence that passed a threshold: how long it lasted
//   'silent' (threshold, episode) silent past one of `thresholds` (once each per episode): the caller
//                                 takes the stack (--report-blocked, the watchdog) and, when the capture
//                                 comes back, asks current(episode) whether the loop was still silent
//   'close'                       the pipe ended (the worker exited, or the app closed fd 4)
//
// An episode ends with the next beat. The master's own lateness is not the worker's silence: a poll
// that runs late (the master was busy, and beats may still sit unread in the pipe) judges nothing, and
// the next one, after the pipe has been read, does.
import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';

export interface LoopWatchOptions {
  /** Report a stall past this silence, in ms; 0: never. */
  stallMs: number;
  /** Silences (ms) at which to emit 'silent'; 0s are ignored. */
  thresholds: readonly number[];
  /** How often the silence is judged, in ms. */
  pollMs: number;
}

export class LoopWatch extends EventEmitter {
  readonly #options: LoopWatchOptions;
  readonly #timer: NodeJS.Timeout;
  #lastBeat = performance.now();
  #lastPoll = performance.now();
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
    stream.on('data', () => this.#beat());
    // EPIPE / ECONNRESET when the worker dies: 'close' follows.
    stream.on('error', () => {});
    stream.once('close', () => this.close());
    this.#timer = setInterval(() => this.#poll(), options.pollMs).unref();
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
    clearInterval(this.#timer);
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
  }

  #poll(): void {
    const now = performance.now();
    const late = now - this.#lastPoll > 2 * this.#options.pollMs;
    this.#lastPoll = now;
    if (late || !this.#beating || this.#closed) return;
    const silentMs = now - this.#lastBeat;
    const { stallMs, thresholds } = this.#options;
    if (stallMs > 0 && !this.#stalled && silentMs > stallMs) {
      this.#stalled = true;
      this.emit('stall', Math.round(silentMs));
    }
    for (const threshold of thresholds) {
      if (threshold <= 0 || silentMs <= threshold || this.#passed.has(threshold)) continue;
      this.#passed.add(threshold);
      this.emit('silent', threshold, this.#episode);
    }
  }
}

/** How often the master judges the silence for these thresholds: an eighth of the smallest, from 5 ms to 125 ms. */
export function pollPeriod(thresholds: readonly number[]): number {
  const smallest = Math.min(1000, ...thresholds.filter((ms) => ms > 0));
  return Math.max(5, Math.floor(smallest / 8));
}

/** The heartbeat period for these thresholds: a quarter of the smallest, from 10 to 250 ms. */
export function beatPeriod(thresholds: readonly number[]): number {
  const smallest = Math.min(...thresholds.filter((ms) => ms > 0));
  return Number.isFinite(smallest) ? Math.min(250, Math.max(10, Math.floor(smallest / 4))) : 250;
}
