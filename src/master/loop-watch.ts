// The master's watch on one worker's heartbeat (src/loop/heartbeat.ts): the silence since its last
// beat says whether its event loop turns. Silence past a level turns into events:
//
//   'stall' (silentMs, episode)   silent past stallMs (once per episode); `least` and `fair` route around it
//   'resume'                      the first beat after a stall
//   'end' (episode, silentMs)     the first beat after a silence that passed a threshold: how long it lasted
//   'silent' (threshold, episode) silent past one of `thresholds` (once each per episode): the caller
//                                 takes the stack (--report-blocked, the watchdog) and, when the capture
//                                 comes back, asks current(episode) whether the loop was still silent
//   'close'                       the pipe ended (the worker exited, or the app closed fd 4)
//
// An episode ends with the next beat. No polling, and no wake-up per beat: each beat carries its time on
// the system's monotonic clock (src/loop/heartbeat.ts), so the master need not read it as it comes. A
// check of each worker is due when its silence would reach the smallest level; only then does the
// master read the pipe, and the last stamp says when the loop last turned: if recently, the check is
// set again from that stamp. While a silence has passed a level the pipe is read as beats come, so
// the episode's end is seen at once. Reading every beat (one every 25 ms per worker) cost the master
// 2-3% of a core on this project's VM with 2 workers, a wake-up each (BENCHMARKS.md). A timer per
// worker for its checks still woke it once per worker per level: with 16 workers and the default
// --report-blocked 100ms, 183 times a second and 4% of a core while idle. The checks of all workers
// now share one timer (loop-checks.ts), and a check runs with an earlier one when it is due soon
// after it, so the master wakes about once per smallest level in all. The judgement runs two loop
// iterations after the pipe is asked for, so the beats already in it are read first: a master that
// was busy does not take its own lateness for the worker's silence.
//
// Holding the reads back uses the stream's libuv handle (readStart/readStop, as Node's own net.Socket
// does when its buffer is full) and makes the stream's _read a no-op; a stream without such a handle
// (a PassThrough in tests) is read as it comes. When the timer fires, a pipe whose descriptor is
// non-blocking (libuv's, checked in /proc/self/fdinfo) is read there and then with one read(2), and
// judged at once: the beats the worker wrote are all in it. Going through the stream instead (start
// reading, two loop iterations, stop) cost an epoll_ctl pair, three wake-ups and the stream machinery
// per check: with 2 workers under keep-alive load the master spent twice the CPU it does now (perf,
// BENCHMARKS.md). Elsewhere, or when that read fails, the stream does it as before.
import { EventEmitter } from 'node:events';
import { readFileSync, readSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { checks, monotonicMs } from './loop-checks.js';

export interface LoopWatchOptions {
  /** Report a stall past this silence, in ms; 0: never. */
  stallMs: number;
  /** Silences (ms) at which to emit 'silent'; 0s are ignored. */
  thresholds: readonly number[];
}

/** What LoopWatch needs of a pipe's libuv handle: the calls net.Socket makes itself. */
interface ReadHandle {
  reading: boolean;
  readStart(): number;
  readStop(): number;
  /** The descriptor, on Unix. */
  fd?: number;
}

/** The longest the pipe goes unread while the loop turns, in ms. */
const HOLD_MS = 250;
/**
 * A check of a pipe read in place may run this share of its wait early, beside another watch's: it
 * reads the pipe, and a newer beat (the heartbeat's period is a quarter of the smallest level) sets it
 * again from that beat; without one, it waits for its own time after all.
 */
const EARLY_SHARE = 2;

/** One beat on the pipe: a 64-bit monotonic time in ns (BEAT_BYTES in src/loop/heartbeat.ts). */
const BEAT_BYTES = 8;
/** One read in place: 128 beats, far more than a worker writes between two checks. */
const READ_BYTES = 128 * BEAT_BYTES;
/** O_NONBLOCK in the octal flags of /proc/self/fdinfo (04000 on every Linux architecture Node supports). */
const O_NONBLOCK = 0o4000;

export class LoopWatch extends EventEmitter {
  readonly #options: LoopWatchOptions;
  /** Every level (stallMs and thresholds), ascending, without duplicates. */
  readonly #levels: number[];
  /** The pending judgement, in `checks` (due at `at`): the first level's (refreshed by beats), or a later one's. */
  readonly #check = (at: number): void => {
    // Run early, beside another watch's check: a read in place, and judged only when due.
    if (monotonicMs() < at - 1 && this.#readInPlace()) {
      // A newer beat set the check again (#armFirst); without one it waits for its time.
      if (!this.#pending && !this.#closed) this.#schedule(at, 0);
      return;
    }
    this.#due();
  };
  /** The pipe's handle when its reads can be held back, else null (read as beats come). */
  readonly #handle: ReadHandle | null;
  /** The pipe's descriptor when it can be read in place without blocking, else null. */
  #fd: number | null;
  /** Where reads in place land (#read copies what it keeps). */
  #buffer: Buffer | null = null;
  readonly #stream: Readable;
  /** Bytes of a beat split across reads. */
  #rest: Buffer = Buffer.alloc(0);
  #lastBeat = monotonicMs();
  /** Beats seen at all: a worker whose heartbeat never started is not judged. */
  #beating = false;
  #stalled = false;
  #episode = 0;
  /** Thresholds already passed in this episode. */
  readonly #passed = new Set<number>();
  /** The last episode that ended: its silence ran from one beat's stamp to the next's (monotonic ms). */
  #ended: { episode: number; from: number; to: number } | null = null;
  #closed = false;

  constructor(stream: Readable, options: LoopWatchOptions) {
    super();
    this.#options = options;
    this.#stream = stream;
    this.#levels = [...new Set([options.stallMs, ...options.thresholds].filter((ms) => ms > 0))].sort((a, b) => a - b);
    this.#handle = this.#levels.length > 0 ? holdableHandle(stream) : null;
    this.#fd = this.#handle ? nonBlockingFd(this.#handle) : null;
    stream.on('data', (chunk: Buffer) => this.#read(chunk));
    // EPIPE / ECONNRESET when the worker dies: 'close' follows.
    stream.on('error', () => {});
    stream.once('close', () => this.close());
    // Read until the first beat, which sets the first timer.
    this.#hold(false);
  }

  /** How long the worker's loop has been silent, in ms (0 before its first beat, and once the pipe is closed: it says nothing then). */
  get silentMs(): number {
    return this.#closed ? 0 : this.#silence();
  }

  /** The silence since the last beat, closed or not. */
  #silence(): number {
    return this.#beating ? Math.round(monotonicMs() - this.#lastBeat) : 0;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** How long silence `episode` lasts: resolves at its end, or with the silence so far when the pipe closes first. */
  lasted(episode: number): Promise<number> {
    if (this.#ended?.episode === episode) return Promise.resolve(Math.round(this.#ended.to - this.#ended.from));
    if (!this.current(episode)) return Promise.resolve(this.#silence());
    return new Promise((resolve) => {
      const onEnd = (ended: number, silentMs: number): void => {
        if (ended !== episode) return;
        this.off('close', onClose);
        this.off('end', onEnd);
        resolve(silentMs);
      };
      const onClose = (): void => {
        this.off('end', onEnd);
        resolve(this.#silence());
      };
      this.on('end', onEnd);
      this.once('close', onClose);
    });
  }

  /** How long the silence `episode` lasted, in ms, once it has ended; null while it goes on, or once a later one has ended too. */
  endedMs(episode: number): number | null {
    return this.#ended?.episode === episode ? Math.round(this.#ended.to - this.#ended.from) : null;
  }

  /** Whether the silence `episode` (from a 'silent' event) is still going on: no beat since. */
  current(episode: number): boolean {
    return !this.#closed && episode === this.#episode;
  }

  /**
   * How long the loop had been silent at `at` (the worker's own monotonic time, in ms, as a stack
   * probe reports it), when `at` lies inside silence `episode`; null when it does not. A capture taken
   * inside a block can reach the master after the beat that ended it (both wait while the master is
   * busy): the worker's clock, not the order they are read in, says whether it saw the block.
   */
  silenceAt(episode: number, at: number): number | null {
    if (this.current(episode)) return at >= this.#lastBeat ? Math.round(at - this.#lastBeat) : null;
    const ended = this.#ended;
    if (this.#closed || ended?.episode !== episode || at < ended.from || at >= ended.to) return null;
    return Math.round(at - ended.from);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    checks.delete(this.#check);
    // Reads held back never see the end of the pipe, so it would stay open: the master's copy of the
    // pipe goes with the watch (a worker that exited must not leave an fd behind).
    this.#stream.destroy();
    this.emit('close');
  }

  #read(chunk: Buffer): void {
    const bytes = this.#rest.length > 0 ? Buffer.concat([this.#rest, chunk]) : chunk;
    const whole = bytes.length - (bytes.length % BEAT_BYTES);
    this.#rest = Buffer.from(bytes.subarray(whole));
    if (whole === 0) return;
    // The first beat of the chunk ends a silence (how long it lasted); the last one is the latest turn.
    // The pipe is the app's to write to: a stamp from the future (no beat can be written after the
    // master reads it) is read as now, so that no check is set past now (a stamp of 2^64 ns set one
    // 1.8e13 ms away, which Node's timer runs after 1 ms, again and again).
    const now = monotonicMs();
    const first = Math.min(Number(bytes.readBigUInt64LE(0)) / 1e6, now);
    const last = Math.min(Number(bytes.readBigUInt64LE(whole - BEAT_BYTES)) / 1e6, now);
    this.#beat(first, Math.max(last, first));
  }

  #beat(first: number, last: number): void {
    if (this.#passed.size > 0) this.emit('end', this.#episode, Math.round(first - this.#lastBeat));
    if (this.#passed.size > 0 || this.#stalled) {
      this.#ended = { episode: this.#episode, from: this.#lastBeat, to: first };
      this.#episode++;
    }
    this.#beating = true;
    if (last > this.#lastBeat) this.#lastBeat = last;
    this.#passed.clear();
    if (this.#stalled) {
      this.#stalled = false;
      this.emit('resume');
    }
    this.#armFirst();
  }

  /** After a beat: no more reads until the silence could reach the first level, and a timer for then. */
  #armFirst(): void {
    const first = this.#levels[0];
    if (first === undefined || this.#closed) return;
    this.#hold(true);
    // At most HOLD_MS without a read, so that silentMs is never far behind for a caller that asks.
    const wait = Math.min(first, HOLD_MS);
    this.#schedule(this.#lastBeat + wait, this.#fd === null ? 0 : Math.floor(wait / EARLY_SHARE));
  }

  /** The next judgement at `at` (monotonic ms), or up to `early` ms before it beside another's. */
  #schedule(at: number, early: number): void {
    checks.set(this.#check, at, early);
  }

  /** A judgement is pending: the check is in `checks`. */
  get #pending(): boolean {
    return checks.has(this.#check);
  }

  /** Holds the pipe's reads back (true) or lets them flow (false). */
  #hold(held: boolean): void {
    const handle = this.#handle;
    if (handle === null || this.#closed || handle.reading === !held) return;
    handle.reading = !held;
    try {
      if (held) handle.readStop();
      else handle.readStart();
    } catch {
      // A handle closing under us: 'close' follows.
    }
  }

  #due(): void {
    if (this.#readInPlace()) {
      this.#judge();
      return;
    }
    if (this.#closed) return;
    // Read what the worker has written; judge after the next iteration's poll phase has read it.
    this.#hold(false);
    // Not unref'd: an unref'd immediate does not keep the poll phase from blocking, so it could wait for
    // whatever event comes next, the end of the very silence it is to judge.
    setImmediate(() => setImmediate(() => this.#judge()));
  }

  /**
   * Reads what the worker has written straight off the held pipe; false when it cannot (no such
   * descriptor, the stream is reading or holds bytes of its own, or the read failed: then the stream
   * reads). The end of the pipe closes the watch.
   */
  #readInPlace(): boolean {
    const fd = this.#fd;
    // The handle's own fd, asked each time: a handle being closed answers -1, and its old number may
    // already belong to another pipe.
    if (fd === null || this.#closed || this.#stream.destroyed || this.#handle?.fd !== fd) return false;
    if (this.#handle.reading || this.#stream.readableLength > 0) return false;
    const buffer = (this.#buffer ??= Buffer.allocUnsafe(READ_BYTES));
    for (;;) {
      let read: number;
      try {
        read = readSync(fd, buffer, 0, READ_BYTES, null);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EAGAIN') return true;
        this.#fd = null;
        return false;
      }
      if (read === 0) {
        this.close();
        return false;
      }
      this.#read(buffer.subarray(0, read));
      if (read < READ_BYTES) return true;
    }
  }

  #judge(): void {
    if (this.#closed || !this.#beating || this.#pending) return;
    // No beat since the last one read: from here the pipe is read as beats come, so the silence's end
    // is seen at once (a beat holds reads again and arms the first level).
    this.#hold(false);
    const beatAt = this.#lastBeat;
    const silentMs = monotonicMs() - beatAt;
    // Not yet at the first level (reads are held at most HOLD_MS): wait for the rest.
    if (silentMs < this.#levels[0]!) {
      this.#schedule(beatAt + this.#levels[0]!, 0);
      return;
    }
    const { stallMs, thresholds } = this.#options;
    if (stallMs > 0 && !this.#stalled && silentMs >= stallMs) {
      this.#stalled = true;
      this.emit('stall', Math.round(silentMs), this.#episode);
    }
    for (const threshold of thresholds) {
      if (threshold <= 0 || silentMs < threshold || this.#passed.has(threshold)) continue;
      this.#passed.add(threshold);
      this.emit('silent', threshold, this.#episode);
    }
    // Closed by a listener, or a beat came while they ran (and armed the first level).
    if (this.#closed || this.#lastBeat !== beatAt) return;
    // Silent past a level: the episode ends with the next beat, and a timer waits for the next level.
    const next = this.#levels.find((level) => level > silentMs);
    if (next !== undefined) this.#schedule(beatAt + next, 0);
  }
}

/** The stream's libuv handle, taken over for reads, when it has one that can start and stop. */
function holdableHandle(stream: Readable): ReadHandle | null {
  const handle = (stream as unknown as { _handle?: Partial<ReadHandle> | null })._handle;
  if (!handle || typeof handle.readStart !== 'function' || typeof handle.readStop !== 'function' || typeof handle.reading !== 'boolean') return null;
  // The stream must not start reading again by itself each time its buffer empties.
  (stream as unknown as { _read: () => void })._read = () => {};
  return handle as ReadHandle;
}

/** The heartbeat period for these thresholds: a quarter of the smallest, from 10 to 250 ms. */
export function beatPeriod(thresholds: readonly number[]): number {
  const smallest = Math.min(...thresholds.filter((ms) => ms > 0));
  return Number.isFinite(smallest) ? Math.min(250, Math.max(10, Math.floor(smallest / 4))) : 250;
}

/** The handle's descriptor when the system says it is non-blocking (a read of it can never hold the master up), else null. */
function nonBlockingFd(handle: ReadHandle): number | null {
  const fd = handle.fd;
  if (process.platform !== 'linux' || !Number.isInteger(fd) || fd! < 0) return null;
  try {
    const flags = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'latin1'));
    return flags && (Number.parseInt(flags[1]!, 8) & O_NONBLOCK) !== 0 ? fd! : null;
  } catch {
    return null;
  }
}
