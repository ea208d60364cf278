// The worker's heartbeat: eight bytes on fd 4, a pipe the master opened for it, every beat, written from
// the main thread's timer: the time of the beat on the system's monotonic clock (process.hrtime,
// CLOCK_MONOTONIC on Linux: the same clock in every process), in ns, little-endian. With the time in the
// beat the master need not read each one as it comes: it reads the pipe when a silence could have
// passed a threshold, and the last stamp says when the loop last turned. The master reads the silence between beats (src/master/loop-watch.ts): a
// loop that stops turning stops beating, and the master can then take its stack through the inspector
// and act, with nothing of the worker's own involved. It replaces a watchdog worker_thread per worker,
// which cost 10-20 MB of RSS (a V8 isolate of its own); this is a tick and a write.
//
// The beats ride the worker's shared timer (ticker.ts), with the loop-delay probe's ticks, so that an
// idle worker wakes once for both. Each is one write(2) of the stamp on the pipe, made non-blocking
// (by opening it as a net.Socket, which libuv does): a master that stops reading can never block the
// app, as a full pipe skips the beat (EAGAIN) and nothing queues. Written through the Socket instead,
// each beat cost a write request and its completion callback on the next turn of the loop (about 7%
// of an idle worker's CPU, measured side by side).
import { fstatSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { every } from './ticker.js';

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
  // Opened as a Socket only for libuv to make the descriptor non-blocking; nothing is written through it.
  const pipe = new Socket({ fd, readable: false, writable: true });
  pipe.on('error', () => {});
  // Never what keeps the process alive.
  pipe.unref();
  const stamp = Buffer.alloc(BEAT_BYTES);
  let open = true;
  const beat = (): void => {
    if (!open) return;
    stamp.writeBigUInt64LE(process.hrtime.bigint());
    try {
      // Eight bytes go whole or not at all (EAGAIN): the kernel never splits so small a write on the pipe.
      writeSync(fd, stamp);
    } catch (error) {
      // EAGAIN: the pipe is full (the master is not reading now): skip this beat. Anything else (EPIPE:
      // the master is gone, which the worker learns from its IPC channel) ends the beating.
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') open = false;
    }
  };
  beat();
  const stop = every(beatMs, beat);
  return () => {
    stop();
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
