// --max-memory's rule, on a stand-in supervisor: two samples over the limit replace a worker; a
// replacement that fails is tried again after RETRY_AFTER_FAILURE_MS while the worker stays over,
// not at every sample; a worker already replaced (draining) is left alone.
import test from 'ava';
import { EventEmitter } from 'node:events';
import { RETRY_AFTER_FAILURE_MS, enforceMemoryLimit, processRss } from '../../src/master/memory-limit.js';
import { BootError } from '../../src/errors.js';
import type { LoopSample } from '../../src/loop/types.js';
import type { WorkerProcess } from '../../src/master/worker.js';

const LIMIT = 100 * 2 ** 20;

function setUp({ leaving = () => false }: { leaving?: () => boolean } = {}) {
  const supervisor = new EventEmitter() as EventEmitter & Record<string, unknown>;
  const worker = { id: 1, pid: 101, state: 'ready' } as unknown as WorkerProcess;
  const slot = { worker: worker as WorkerProcess | null };
  const asked: Array<{ resolve: (successor: WorkerProcess) => void; reject: (error: Error) => void }> = [];
  supervisor.phase = 'running';
  supervisor.countMemoryReplacement = () => {};
  supervisor.slot = () => slot;
  supervisor.replace = () => new Promise<WorkerProcess>((resolve, reject) => asked.push({ resolve, reject }));
  const events: string[] = [];
  const logs = { event: (event: string) => events.push(event), eventOnce: (event: string) => events.push(event) };
  let clock = 1_000_000;
  enforceMemoryLimit({ supervisor: supervisor as never, limitBytes: LIMIT, logs, now: () => clock, leaving });
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

test('a cluster going away (--shutdown-delay, a stop) replaces no worker over the limit, and says nothing of it', (t) => {
  // The supervisor still runs during the delay: a replacement was forked for a pod on its way out.
  let leaving = false;
  const { asked, events, sample } = setUp({ leaving: () => leaving });
  sample(LIMIT + 1);
  leaving = true;
  for (let i = 0; i < 5; i++) sample(LIMIT + 1);
  t.is(asked.length, 0);
  t.deepEqual(events, []);
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

test('a successor is left running only if its RSS at start-up was over the limit, said once per worker id', async (t) => {
  const supervisor = new EventEmitter() as EventEmitter & Record<string, unknown>;
  const workers = new Map<number, WorkerProcess>();
  const make = (id: number, pid: number): WorkerProcess => ({ id, pid, state: 'ready' }) as unknown as WorkerProcess;
  supervisor.phase = 'running';
  supervisor.countMemoryReplacement = () => {};
  supervisor.slot = (id: number) => ({ worker: workers.get(id) ?? null });
  let nextPid = 200;
  // Every replacement succeeds at once: the successor gets ready and serves the id.
  supervisor.replace = (id: number, { onProgress }: { onProgress: (phase: string, worker: WorkerProcess) => void }) => {
    const successor = make(id, nextPid++);
    onProgress('starting', successor);
    workers.set(id, successor);
    supervisor.emit('worker-ready', successor);
    return Promise.resolve(successor);
  };
  const startRss = new Map<number, number>();
  const lines: Array<{ event: string; pid: unknown }> = [];
  const logs = { event: (event: string, _message: string, data: Record<string, unknown> = {}) => lines.push({ event, pid: data.pid }) };
  enforceMemoryLimit({ supervisor: supervisor as never, limitBytes: LIMIT, logs, rssOf: (pid) => startRss.get(pid) ?? null });
  const overTwice = (worker: WorkerProcess): void => {
    for (let i = 0; i < 2; i++) supervisor.emit('sample', worker, { memory: { rss: LIMIT * 2 } } as LoopSample);
  };

  // Worker 1's successors start under the limit (they leak under load): each is replaced in turn.
  for (const id of [1, 2]) workers.set(id, make(id, 100 + id));
  startRss.set(200, LIMIT / 2);
  startRss.set(201, LIMIT / 2);
  overTwice(workers.get(1)!);
  await settle();
  overTwice(workers.get(1)!);
  await settle();
  t.is(workers.get(1)!.pid, 201);
  // Worker 2's successor starts over it: left running, and said for worker 2 too, once.
  startRss.set(202, LIMIT * 2);
  startRss.set(203, LIMIT * 2);
  overTwice(workers.get(2)!);
  await settle();
  t.is(workers.get(2)!.pid, 202);
  overTwice(workers.get(2)!);
  overTwice(workers.get(2)!);
  await settle();
  t.is(workers.get(2)!.pid, 202, 'left running');
  // Worker 1's next successor (203) starts over it: its own line, worker 1's first.
  overTwice(workers.get(1)!);
  await settle();
  overTwice(workers.get(1)!);
  await settle();
  t.deepEqual(
    lines.map(({ event, pid }) => `${event} ${String(pid)}`),
    [
      'memory-limit 101', 'memory-restarted 200',
      'memory-limit 200', 'memory-restarted 201',
      'memory-limit 102', 'memory-restarted 202',
      'memory-limit-too-low 202',
      'memory-limit 201', 'memory-restarted 203',
      'memory-limit-too-low 203',
    ],
  );
});

test('processRss reads a live process from /proc, and is null for one that is gone', (t) => {
  const rss = processRss(process.pid);
  t.true(rss !== null && rss > 10 * 2 ** 20);
  t.is(processRss(2 ** 22 + 1), null);
});
