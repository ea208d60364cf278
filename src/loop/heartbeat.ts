// The worker's heartbeat: eight bytes on fd 4, a pipe the master opened for it, every beat, written by
// a timer of the main thread: the time of the beat on the system's monotonic clock (process.hrtime,
// CLOCK_MONOTONIC on Linux: the same clock in every process), in ns, little-endian. With the time in the
// beat the master need not read each one as it comes: it reads the pipe when a silence could have
// passed a threshold, and the last stamp says when the loop last turned. The master reads the silence between beats (src/master/loop-watch.ts): a
// loop that stops turning stops beating, and the master can then take its stack through the inspector
// and act, with nothing of the worker's own involved. It replaces a watchdog worker_thread per worker,
// which cost 10-20 MB of RSS (a V8 isolate of its own); this is one timer and a write.
//
// The write is asynchronous (a libuv stream), so a master that stops reading can never block the app:
// a beat is skipped while the previous one is still queued, so nothing grows either.
import { fstatSync } from 'node:fs';
import { Socket } from 'node:net';

/** The beat period's bounds, in ms: under 5, timer jitter is most of it; over 1 s, the master learns too late. */
export const MIN_BEAT_MS = 5;
export const MAX_BEAT_MS = 1000;
/** One beat on the pipe: a 64-bit monotonic time in ns. */
export const BEAT_BYTES = 8;

/** Starts beating on `fd`; returns the stop function. Throws a RangeError for a bad period or when fd is not a pipe. */
export function startHeartbeat({ fd = 4, beatMs }: { fd?: number; beatMs: number }): () => void {
  if (!(Number.isInteger(beatMs) && beatMs >= MIN_BEAT_MS && beatMs <= MAX_BEAT_MS)) {
    throw new RangeError(`Expected the heartbeat period to be an integer from ${MIN_BEAT_MS} to ${MAX_BEAT_MS} ms, got \`${beatMs}\``);
  }
  if (!isPipe(fd)) throw new RangeError(`Expected fd ${fd} to be the pipe to the master (the fork's fifth stdio entry)`);
  const pipe = new Socket({ fd, readable: false, writable: true });
  // EPIPE once the master is gone: the worker learns that from its IPC channel.
  pipe.on('error', () => {});
  // Never what keeps the process alive.
  pipe.unref();
  const beat = (): void => {
    if (!pipe.writable || pipe.writableLength > 0) return;
    const stamp = Buffer.allocUnsafe(BEAT_BYTES);
    stamp.writeBigUInt64LE(process.hrtime.bigint());
    pipe.write(stamp);
  };
  beat();
  const timer = setInterval(beat, beatMs).unref();
  return () => {
    clearInterval(timer);
    pipe.destroy();
  };
}

function isPipe(fd: number): boolean {
  try {
    const stat = fstatSync(fd);
    return stat.isFIFO() || stat.isSocket();
  } catch {
    return false;
  }
}
