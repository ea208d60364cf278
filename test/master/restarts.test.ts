// The crash count an id's restart line and `status` give: consecutive crashes, the first one after a
// long run included. The backoff starts afresh there, but the count was one short ("7 crashes in a
// row" where the worker had crashed 8 times running).
import test from 'ava';
import { DEFAULT_BACKOFF } from '../../src/master/backoff.js';
import { Restarts, type RestartHost } from '../../src/master/restarts.js';
import type { Slot } from '../../src/master/slot.js';
import type { WorkerExit, WorkerProcess } from '../../src/master/worker.js';

/** A worker of id 1 that served `servedMs` before it exited, as much of one as Restarts reads. */
const crashed = (servedMs: number): WorkerProcess =>
  ({ id: 1, pid: 4242, servedMs, exitedAt: Date.now(), stoppingAt: null, stderrTail: { lines: () => [], since: () => [] }, lastOutput: () => [] }) as unknown as WorkerProcess;

const EXIT: WorkerExit = { code: 1, signal: null, from: 'ready', killed: false };

function restartsOf(slot: Slot): { restarts: Restarts; lines: string[]; delays: number[] } {
  const lines: string[] = [];
  const delays: number[] = [];
  const host: RestartHost = {
    config: { logs: { event: (_event: string, message: string, data: { restartInMs?: number }) => { lines.push(message); delays.push(data.restartInMs ?? -1); } }, maxBootFailures: 3, nodeArgGiven: false } as unknown as RestartHost['config'],
    backoff: { ...DEFAULT_BACKOFF, jitter: 0, initialMs: 1000 },
    phase: () => 'running',
    slots: () => [slot],
    workers: () => [],
    ownListeners: () => [],
    restartAtOnce: () => false,
    restarted: () => {},
    reconcile: () => {},
    fatal: () => {},
    bootFailed: () => {},
  };
  return { restarts: new Restarts(host), lines, delays };
}

test('the first crash after a long run is crash 1 of a new run, and its backoff starts afresh: the next ones count on from it', (t) => {
  const slot: Slot = { id: 1, worker: null, successor: null, attempt: 5, bootFailures: 0, restartTimer: null, restartAt: null, want: null };
  const { restarts, lines, delays } = restartsOf(slot);
  t.teardown(() => restarts.clear(slot));
  restarts.after(slot, crashed(DEFAULT_BACKOFF.resetAfterMs), EXIT, undefined);
  t.is(slot.attempt, 1);
  restarts.clear(slot);
  restarts.after(slot, crashed(10), EXIT, undefined);
  t.is(slot.attempt, 2);
  restarts.clear(slot);
  restarts.after(slot, crashed(10), EXIT, undefined);
  t.is(slot.attempt, 3);
  restarts.clear(slot);
  // 1 s, 2 s, 4 s: the same waits as from the cluster's start.
  t.deepEqual(delays, [1000, 2000, 4000]);
  t.regex(lines[0]!, /restarting in 1\.0 s \(1 crash\)$/);
  t.regex(lines[2]!, /restarting in 4\.0 s \(3 crashes in a row\)$/);
});

test('from the start, the first crash is crash 1', (t) => {
  const slot: Slot = { id: 1, worker: null, successor: null, attempt: 0, bootFailures: 0, restartTimer: null, restartAt: null, want: null };
  const { restarts, delays } = restartsOf(slot);
  restarts.after(slot, crashed(10), EXIT, undefined);
  restarts.clear(slot);
  t.is(slot.attempt, 1);
  t.deepEqual(delays, [1000]);
});
