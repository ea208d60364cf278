// The master's follower of one worker's heartbeat (src/loop/heartbeat.ts), over its LoopWatch:
// stalls for balancing, silences for the watchdog and --report-blocked (the stack taken through the
// worker's inspector), and a heartbeat lost while the worker runs. The WorkerProcess owns it and
// hears what it finds through HeartbeatWorker's callbacks.
import type { Readable } from 'node:stream';
import { performance } from 'node:perf_hooks';
import type { Capture } from '../loop/capture.js';
import { LATE_CAPTURE_MS, blockedFrames, endedRightAfter, type BlockingReport } from './blocking-report.js';
import { CAPTURE_TIMEOUT_MS, STOPPED, isStopped, type WorkerInspector } from './inspector.js';
import type { LogSink } from './logs.js';
import { LoopWatch } from './loop-watch.js';
import type { BlockedInfo } from './status.js';
import type { WatchSettings } from './worker-fork.js';
import { isUp, type WorkerState } from './worker-state.js';

/** A heartbeat pipe that closes this long before its worker's exit is reported as lost. */
const HEARTBEAT_EXIT_GRACE_MS = 1000;
/**
 * A capture that finds the loop idle while its heartbeat is silent is taken again this much later:
 * idle and silent a second time, the beats are not coming (fd 4 held open by another process).
 */
const LOST_RECHECK_MS = 1000;

/** --report-blocked takes at most this many stacks per second of one worker. */
const REPORT_CAPTURES_PER_SEC = 4;

/** What a HeartbeatWatch reads of its worker, and the callbacks it tells the worker what it found with. */
export interface HeartbeatWorker {
  readonly id: number;
  readonly pid: number;
  readonly logs: LogSink;
  /** Takes the stacks of a silent loop. */
  readonly inspector: Pick<WorkerInspector, 'captureAt'>;
  state(): WorkerState;
  /** When it got ready, on the monotonic clock, or null. */
  readyTick(): number | null;
  /** A `clusterd loop` window is open, or its answer on the way (a cancelled one's too): its hooks run in the worker. */
  measuring(): boolean;
  /** Its loop stalled: balancing goes around it. */
  onStall(): void;
  /** It beats again after a stall. */
  onResume(): void;
  /** The pipe ended: the worker exited, or the app closed fd 4 (or its heartbeat was given up on as lost). */
  onClose(): void;
  /** The watchdog caught its loop blocked past --watchdog (the worker's 'blocked'). */
  onBlocked(info: Omit<BlockedInfo, 'pid'>): void;
  /** --report-blocked caught its loop blocked (the worker's 'blocking'). */
  onBlocking(report: BlockingReport): void;
}

/** Follows the worker's heartbeat (src/loop/heartbeat.ts): stalls for balancing, silences for the watchdog and --report-blocked. */
export class HeartbeatWatch {
  readonly #watch: LoopWatch;
  readonly #worker: HeartbeatWorker;
  /** Why its heartbeat is no longer followed while it runs: the pipe closed, or it went silent on an idle loop. */
  #heartbeatLost: 'closed' | 'silent' = 'closed';
  /** The silence whose idle capture is being taken again (#suspectLostHeartbeat). */
  #lostProbe: number | null = null;
  /** When --report-blocked last took stacks (the rate limit). */
  readonly #reportCaptures: number[] = [];
  /** The silence the watchdog reported (and so replaced the worker for): its block is counted by that report. */
  #replacedEpisode: number | null = null;

  constructor(pipe: Readable, settings: WatchSettings, worker: HeartbeatWorker) {
    this.#worker = worker;
    this.#watch = this.#watchHeartbeat(pipe, settings);
  }

  /** How long its loop has been silent, in ms (0 when it beats). */
  get silentMs(): number {
    return this.#watch.silentMs;
  }

  /** Stops following it (its process exited). */
  close(): void {
    this.#watch.close();
  }

  /** The LoopWatch on `pipe`, its events turned into the worker's: stalls for balancing, silences for the watchdog and --report-blocked. */
  #watchHeartbeat(pipe: Readable, { stallMs, watchdogMs, reportBlockedMs }: WatchSettings): LoopWatch {
    const watch = new LoopWatch(pipe, { stallMs, thresholds: [watchdogMs, reportBlockedMs] });
    watch.on('stall', (silentMs: number, episode: number) => {
      // A silence that began before the worker said it was ready: its loop turned since (to say so),
      // so it has been silent only since then; a stall of its start-up has a beat on its way, and
      // balancing around it would give the other workers a burst of connections for nothing. Judged
      // again once that silence is a stall too, unless a beat came. (Ignored for good, a loop that
      // blocked within a beat of the ready, as a fast machine's first request can, was never routed
      // around: `least` held new connections for it for the whole block.)
      const readyTick = this.#worker.readyTick();
      const sinceReady = readyTick === null ? Infinity : performance.now() - readyTick;
      if (sinceReady >= silentMs || sinceReady >= stallMs) return this.#worker.onStall();
      setTimeout(() => {
        if (watch.current(episode) && isUp(this.#worker.state())) this.#worker.onStall();
      }, stallMs - sinceReady).unref();
    });
    watch.on('resume', () => this.#worker.onResume());
    watch.on('silent', (threshold: number, episode: number) => {
      // A long synchronous start-up is not a hung worker: --listen-timeout covers booting.
      if (!isUp(this.#worker.state())) return;
      void this.#onSilent(watch, threshold === watchdogMs ? 'watchdog' : 'report', episode);
    });
    watch.on('close', () => {
      this.#worker.onClose();
      // The pipe also closes when the worker exits; one that closes while it runs (the app closed
      // fd 4) leaves the worker without blocked-loop detection: say so once.
      setTimeout(() => {
        if (this.#worker.state() === 'exited') return;
        const why =
          this.#heartbeatLost === 'closed'
            ? 'its heartbeat pipe (fd 4) closed while it runs (did the app close fd 4?)'
            : 'its heartbeat (fd 4) went silent while its loop is idle (did the app hand fd 4 to another process?)';
        const { id, pid } = this.#worker;
        this.#worker.logs.event('watchdog-lost', `worker ${id} (pid ${pid}): ${why}; blocked-loop detection is off for it`, { worker: id, pid }, 'warn');
      }, HEARTBEAT_EXIT_GRACE_MS).unref();
    });
    return watch;
  }

  /**
   * The loop has been silent past a threshold: take its stack. A capture that the main thread ran after
   * the loop beat again, or on an idle loop, says nothing about where it was: the silence itself was real
   * (judged from the beats, never from the master's lateness). The watchdog's reports replace the worker
   * (the supervisor's 'blocked'), only while it is still silent; --report-blocked's only say where
   * ('blocking'), and count every silence past it: with the site when the probe ran inside the block,
   * even if the master reads its answer after the loop's next beat, else with none.
   */
  async #onSilent(watch: LoopWatch, why: 'watchdog' | 'report', episode: number): Promise<void> {
    // `clusterd loop`'s hooks run in every callback of the worker while it measures (until the worker
    // has its answer out, a cancelled window too): a promise-heavy app runs several times slower, and its
    // blocks are the measurement's as much as the app's. They are not filed as sites nor counted, or
    // one look would leave entries in `status` and clusterd_worker_blocks_total for five minutes and
    // for good; `loop`'s own output shows the window's longest callbacks.
    const measured = (): boolean => this.#worker.measuring();
    if (why === 'report' && measured()) return;
    if (why === 'report') {
      const now = Date.now();
      while (this.#reportCaptures.length > 0 && now - this.#reportCaptures[0]! > 1000) this.#reportCaptures.shift();
      if (this.#reportCaptures.length >= REPORT_CAPTURES_PER_SEC) return;
      this.#reportCaptures.push(now);
    }
    // No stack to be had while the loop is still silent (an inspector that cannot come up, a probe no
    // JavaScript ran within its time: a block inside a native call, crypto.pbkdf2Sync or a huge
    // JSON.parse): a block all the same, with no site to name.
    const siteless = (): void => {
      if (watch.current(episode)) this.#reportBlocking(episode, { frames: [], blockedMs: watch.silentMs, time: Date.now(), lasted: watch.lasted(episode) });
      else endedUnseen();
    };
    // The silence ended before the probe could run inside it: the worker's first stack, whose inspector
    // Node opens from the main thread, so after the native call that blocked it returns. The silence
    // was real all the same (it is judged from the beats, never from the master's own lateness): a
    // block with no site, as long as it lasted. It went uncounted, every new process's first.
    const endedUnseen = (): void => {
      const lasted = why === 'report' && !measured() ? watch.endedMs(episode) : null;
      if (lasted !== null) this.#reportBlocking(episode, { frames: [], blockedMs: lasted, time: Date.now(), lasted: Promise.resolve(lasted) });
    };
    let capture: Capture | null;
    try {
      capture = await this.#worker.inspector.captureAt();
    } catch (error) {
      if (why === 'watchdog' && watch.current(episode)) this.#reportBlocked(episode, watch.silentMs, null, (error as Error).message);
      if (why === 'report') siteless();
      return;
    }
    if (capture !== null && capture.frames.length === 0) {
      if (watch.current(episode)) this.#suspectLostHeartbeat(watch, episode);
      return endedUnseen();
    }
    if (why === 'report') {
      if (measured()) return;
      if (capture === null) return siteless();
      const blockedMs = capture.at === null ? (watch.current(episode) ? watch.silentMs : null) : watch.silenceAt(episode, capture.at);
      if (blockedMs === null) return endedUnseen();
      const lasted = watch.lasted(episode);
      const late = capture.at !== null && capture.at - capture.sentAt > LATE_CAPTURE_MS;
      const native = late && (await endedRightAfter(lasted, blockedMs, capture.at!));
      this.#reportBlocking(episode, { frames: blockedFrames(capture), native, blockedMs, time: Date.now(), lasted });
      return;
    }
    if (!watch.current(episode)) return;
    this.#reportBlocked(
      episode,
      watch.silentMs,
      capture,
      capture === null ? (isStopped(this.#worker.pid) ? STOPPED : `could not pause the main thread within ${CAPTURE_TIMEOUT_MS} ms (blocked inside a native call?)`) : undefined,
    );
  }

  /**
   * The loop was idle while its heartbeat was silent: the master may have been late, or the beats do
   * not come (the app handed fd 4 to a process that keeps it open, and closed its own: the pipe never
   * ends, and the worker read as blocked for good, was never replaced, and got no connections under
   * `fair`). Idle again a little later in the same silence, the heartbeat is lost: it is followed no
   * more (the watch closes, as when fd 4 closes: one `watchdog-lost` line, no blocked state left).
   */
  #suspectLostHeartbeat(watch: LoopWatch, episode: number): void {
    if (this.#lostProbe === episode) return;
    this.#lostProbe = episode;
    setTimeout(() => {
      if (!watch.current(episode) || !isUp(this.#worker.state())) return;
      this.#worker.inspector.captureAt().then(
        (capture) => {
          if (this.#lostProbe === episode) this.#lostProbe = null;
          if (capture === null || capture.frames.length > 0 || !watch.current(episode) || !isUp(this.#worker.state())) return;
          this.#heartbeatLost = 'silent';
          watch.close();
        },
        () => {
          if (this.#lostProbe === episode) this.#lostProbe = null;
        },
      );
    }, LOST_RECHECK_MS).unref();
  }

  /**
   * A --report-blocked report of silence `episode`, unless the watchdog reported that silence first.
   * Both probes can wait on one capture, and the report's then waits to learn whether the block ended
   * right after it (a native call): meanwhile the watchdog's report replaces the worker. The report
   * that followed was counted as a second block, and the watchdog's, with no end ever set, read as
   * growing with the clock in `status` for the sites' whole window.
   */
  #reportBlocking(episode: number, report: BlockingReport): void {
    if (this.#replacedEpisode === episode) return;
    this.#worker.onBlocking(report);
  }

  #reportBlocked(episode: number, blockedMs: number, capture: Capture | null, error?: string): void {
    this.#replacedEpisode = episode;
    // Where --report-blocked files the block (blockedFrames), whichever report comes first: a frame
    // caught at its function's entry is apart, for the log's whole stack.
    const stack = capture === null ? [] : blockedFrames(capture);
    const entryFrame = capture?.atEntry ? capture.frames[0] : undefined;
    this.#worker.onBlocked({ state: 'blocked', stack, time: Date.now(), blockedMs, ...(entryFrame ? { entryFrame } : {}), ...(error ? { error } : {}) });
  }
}
