// --max-memory's rule, on a stand-in supervisor: two samples over the limit replace a worker; a
// replacement that fails is tried again after RETRY_AFTER_FAILURE_MS while the worker stays over,
// not at every sample; a worker already replaced (draining) is left alone.
import test from 'ava';
import { EventEmitter } from 'node:events';
import { RETRY_AFTER_FAILURE_MS, enforceMemoryLimit } from '../../src/master/memory-limit.js';
import { BootError } from '../../src/errors.js';
import type { LoopSample } from '../../src/loop/types.js';
import type { WorkerProcess } from '../../src/master/worker.js';

const LIMIT = 100 * 2 ** 20;

function setUp() {
  const supervisor = new EventEmitter() as EventEmitter & Record<string, unknown>;
  const worker = { id: 1, pid: 101, state: 'ready' } as unknown as WorkerProcess;
  const slot = { worker: worker as WorkerProcess | null };
  const asked: Array<{ resolve: (successor: WorkerProcess) => void; reject: (error: Error) => void }> = [];
  supervisor.phase = 'running';
  supervisor.slot = () => slot;
  supervisor.replace = () => new Promise<WorkerProcess>((resolve, reject) => asked.push({ resolve, reject }));
  const events: string[] = [];
  const logs = { event: (event: string) => events.push(event), eventOnce: (event: string) => events.push(event) };
  let clock = 1_000_000;
  enforceMemoryLimit({ supervisor: supervisor as never, limitBytes: LIMIT, logs, now: () => clock });
  const sample = (rss: number): void => {
    supervisor.emit('sample', worker, { memory: { rss } } as LoopSample);
  };
  return { worker, slot, asked, events, sample, advance: (ms: number) => (clock += ms) };
}

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('a failed memory replacement is tried again after RETRY_AFTER_FAILURE_MS while the worker stays over, not at every sample', async (t) => {
  const { asked, events, sample, advance } = setUp();
  sample(LIMIT + 1);
  t.is(asked.length, 0, 'one sample over is not staying over');
  sample(LIMIT + 1);
  t.is(asked.length, 1);
  sample(LIMIT + 1);
  t.is(asked.length, 1, 'one replacement at a time for a worker');

  asked[0]!.reject(new BootError("worker 1's replacement exited with code 1 before it was ready", []));
  await settle();
  t.deepEqual(events, ['memory-limit', 'memory-restart-failed']);
  for (let i = 0; i < 20; i++) sample(LIMIT + 1);
  advance(RETRY_AFTER_FAILURE_MS - 1);
  sample(LIMIT + 1);
  t.is(asked.length, 1, 'not before RETRY_AFTER_FAILURE_MS');
  advance(1);
  sample(LIMIT + 1);
  t.is(asked.length, 2, 'tried again');
  t.deepEqual(events, ['memory-limit', 'memory-restart-failed', 'memory-limit']);
});

test('a worker whose replacement succeeded is left alone while it drains, whatever its samples', async (t) => {
  const { worker, slot, asked, events, sample } = setUp();
  sample(LIMIT + 1);
  sample(LIMIT + 1);
  const successor = { id: 1, pid: 102, state: 'ready' } as unknown as WorkerProcess;
  slot.worker = successor;
  asked[0]!.resolve(successor);
  await settle();
  t.is(worker.pid, 101);
  for (let i = 0; i < 5; i++) sample(LIMIT + 1);
  t.is(asked.length, 1);
  t.deepEqual(events, ['memory-limit', 'memory-restarted']);
});
