// Shared by the loop tests: a sampler whose samples are awaited one by one, and a CPU-bound stall.
import { setTimeout as pause } from 'node:timers/promises';
import { createSampler, type Sampler } from '../../src/loop/sampler.js';
import type { LoopSample, TrafficCounters } from '../../src/loop/types.js';

export interface SampleQueue {
  sampler: Sampler;
  traffic: TrafficCounters;
  /** Resolves with the next periodic sample not yet taken from the queue. */
  next(): Promise<LoopSample>;
  /** Samples delivered so far. */
  readonly delivered: number;
}

/** Starts a sampler every `intervalMs` whose samples queue up until next() takes them. */
export function startQueue(intervalMs: number, resolutionMs = 10): SampleQueue {
  const traffic: TrafficCounters = { requests: 0, inflight: 0, connections: 0 };
  const ready: LoopSample[] = [];
  const waiting: Array<(sample: LoopSample) => void> = [];
  let delivered = 0;
  const sampler = createSampler({
    intervalMs,
    resolutionMs,
    traffic,
    onSample(sample) {
      delivered++;
      const resolve = waiting.shift();
      if (resolve) resolve(sample);
      else ready.push(sample);
    },
    onError(error) {
      throw error;
    },
  });
  sampler.start();
  return {
    sampler,
    traffic,
    next: () => {
      const sample = ready.shift();
      if (sample) return Promise.resolve(sample);
      // The sampler's timers are unref'd, so while a test waits on them something must hold the loop
      // open, as a worker's IPC channel and servers do. This timer only does that; it never fires.
      const keepAlive = setTimeout(() => {}, 2 ** 31 - 1);
      return new Promise((resolve) =>
        waiting.push((next) => {
          clearTimeout(keepAlive);
          resolve(next);
        }),
      );
    },
    get delivered() {
      return delivered;
    },
  };
}

/**
 * Blocks the loop for at least `ms` of wall time and of process CPU time, however loaded the machine is
 * (a busy machine stretches the wall time; the CPU time can't be less).
 */
export function burnCpu(ms: number): void {
  const start = performance.now();
  const cpu = process.cpuUsage();
  while (true) {
    const used = process.cpuUsage(cpu);
    if (performance.now() - start >= ms && used.user + used.system >= ms * 1000) return;
  }
}

/**
 * Lets `ms` pass so a test can check that something did NOT happen meanwhile (a stopped timer
 * stays silent). Never use it to wait for something to happen: wait on the event or poll.
 */
export function observeFor(ms: number): Promise<void> {
  return pause(ms);
}

/** Keeps this process alive until the test ends: the shared timer (src/loop/ticker.ts) is unref'd. */
export function keepAlive(t: { teardown(fn: () => void): void }): void {
  const timer = setTimeout(() => {}, 60_000);
  t.teardown(() => clearTimeout(timer));
}
