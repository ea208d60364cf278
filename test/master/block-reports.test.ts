// One blocked loop caught by both --report-blocked and the watchdog counts once in the blocked
// sites, whichever report comes first, and a block the watchdog ended by replacing the worker has its
// length settled: it does not grow with the clock in `status` for the sites' five-minute window.
// The order is forced here: HeartbeatWatch over a PassThrough (the heartbeat pipe) with an inspector
// whose captures the test answers, and BlockReports over stand-in workers.
import test from 'ava';
import { EventEmitter, once } from 'node:events';
import { PassThrough } from 'node:stream';
import type { Capture } from '../../src/loop/capture.js';
import type { StackFrame } from '../../src/loop/types.js';
import { BlockReports } from '../../src/master/block-reports.js';
import { BlockedSites } from '../../src/master/blocked-sites.js';
import type { BlockingReport } from '../../src/master/blocking-report.js';
import { HeartbeatWatch } from '../../src/master/heartbeat-watch.js';
import type { LogSink } from '../../src/master/logs.js';
import { monotonicMs } from '../../src/master/loop-checks.js';
import type { BlockedInfo } from '../../src/master/status.js';
import type { WorkerProcess } from '../../src/master/worker.js';

const frames: StackFrame[] = [{ functionName: 'spin', url: 'file:///srv/app/block.js', line: 7, column: 3 }];
const quietLogs = { event() {} } as unknown as LogSink;

/**
 * A worker's heartbeat over a PassThrough, its stack captures answered by the test (answer(capture)).
 * As the worker's inspector does, a probe that asks while a capture is in flight shares it.
 */
function watchedWorker() {
  const pipe = new PassThrough();
  const asked = new EventEmitter();
  let inFlight: { promise: Promise<Capture>; resolve(capture: Capture): void } | null = null;
  let asks = 0;
  const blocked: Array<Omit<BlockedInfo, 'pid'>> = [];
  const blocking: BlockingReport[] = [];
  const watch = new HeartbeatWatch(
    pipe,
    { stallMs: 0, watchdogMs: 200, reportBlockedMs: 50 },
    {
      id: 1,
      pid: process.pid,
      logs: quietLogs,
      inspector: {
        captureAt: () => {
          if (!inFlight) {
            let resolve!: (capture: Capture) => void;
            const promise = new Promise<Capture>((settle) => (resolve = settle));
            inFlight = { promise, resolve };
          }
          const { promise } = inFlight;
          asked.emit('ask', ++asks);
          return promise;
        },
      },
      state: () => 'ready',
      readyTick: () => 0,
      measuring: () => false,
      onStall() {},
      onResume() {},
      onClose() {},
      onBlocked: (info) => blocked.push(info),
      onBlocking: (report) => blocking.push(report),
    },
  );
  const beat = (): void => {
    const stamp = Buffer.alloc(8);
    stamp.writeBigUInt64LE(process.hrtime.bigint());
    pipe.write(stamp);
  };
  /** Resolves once `count` probes in all have asked for a stack (--report-blocked's first, then the watchdog's). */
  const asking = (count: number): Promise<void> =>
    new Promise((resolve) => {
      if (asks >= count) return resolve();
      // The watch's timer is unref'd, as the master's must be: something has to keep this process up meanwhile.
      const keepAlive = setInterval(() => {}, 1000);
      const listener = (n: number): void => {
        if (n < count) return;
        asked.off('ask', listener);
        clearInterval(keepAlive);
        resolve();
      };
      asked.on('ask', listener);
    });
  const answer = (capture: Capture): void => {
    const flight = inFlight!;
    inFlight = null;
    flight.resolve(capture);
  };
  return { pipe, watch, asking, answer, blocked, blocking, beat };
}

/** Every callback a resolved capture set off without a timer has run (they are promise continuations). */
const settled = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('both probes share a late capture: the watchdog replaces the worker while --report-blocked\'s waits to learn the end; that report is not a second block', async (t) => {
  const { pipe, watch, asking, answer, blocked, blocking, beat } = watchedWorker();
  t.teardown(() => watch.close());
  beat();
  await asking(2);
  // The main thread ran the probe inside the silence but late (a loaded machine): --report-blocked's
  // report waits for the silence's end to tell a native call, and the watchdog's does not.
  const at = monotonicMs();
  answer({ frames, at, sentAt: at - 100, atEntry: false });
  await settled();
  t.is(blocked.length, 1);
  t.is(blocking.length, 0);
  // The worker is killed: its pipe closes, which ends the silence the report was waiting on.
  pipe.end();
  await once(pipe, 'close');
  await settled();
  t.is(blocking.length, 0, 'the watchdog\'s report counts this block');
});

test('--report-blocked\'s report comes first: both reports are made (BlockReports counts them as one block)', async (t) => {
  const { watch, asking, answer, blocked, blocking, beat } = watchedWorker();
  t.teardown(() => watch.close());
  beat();
  await asking(1);
  const at = monotonicMs();
  answer({ frames, at, sentAt: at, atEntry: false });
  await settled();
  t.is(blocking.length, 1);
  await asking(2);
  answer({ frames, at: monotonicMs(), sentAt: monotonicMs(), atEntry: false });
  await settled();
  t.is(blocked.length, 1);
  t.is(blocking.length, 1);
});

/** BlockReports over BlockedSites, with a stand-in worker that the watchdog "kills". */
function reports() {
  const blockedSites = new BlockedSites();
  const blockReports = new BlockReports({ logs: quietLogs, blockedSites, blocking() {}, changed() {} });
  const worker = Object.assign(new EventEmitter(), { id: 1, pid: 4242, killed: false, kill() {
    this.killed = true;
  } });
  blockReports.follow(worker as unknown as WorkerProcess);
  return { blockedSites, worker };
}

test('a block only the watchdog reported ends with the worker: its length is the watchdog\'s, not the time since it began', (t) => {
  const { blockedSites, worker } = reports();
  const time = Date.now();
  worker.emit('blocked', { state: 'blocked', stack: frames, time, blockedMs: 450, pid: 4242 } satisfies BlockedInfo);
  t.true(worker.killed);
  const [site] = blockedSites.sites(1, time + 60_000);
  t.like(site, { function: 'spin', count: 1, maxMs: 450 });
  t.is(blockedSites.total(1), 1);
});

test('a block --report-blocked reported and the watchdog then ended counts once, with the watchdog\'s length until the silence is known', async (t) => {
  const { blockedSites, worker } = reports();
  const time = Date.now();
  let end!: (ms: number) => void;
  const lasted = new Promise<number>((resolve) => (end = resolve));
  worker.emit('blocking', { frames, blockedMs: 120, time, lasted } satisfies BlockingReport);
  worker.emit('blocked', { state: 'blocked', stack: frames, time: time + 300, blockedMs: 420, pid: 4242 } satisfies BlockedInfo);
  t.like(blockedSites.sites(1, time + 60_000)[0], { count: 1, maxMs: 420 });
  // The pipe closes as the worker exits: the silence until then is the block's whole length.
  end(430);
  await lasted;
  await Promise.resolve();
  t.like(blockedSites.sites(1, time + 60_000)[0], { count: 1, maxMs: 430 });
  t.is(blockedSites.total(1), 1);
});

/** A function called right after a native call (a JSON.parse), caught at its entry, and its caller. */
const called: StackFrame = { functionName: 'serializeBig', url: 'file:///srv/app/block.js', line: 20, column: 23 };
const caller: StackFrame = { functionName: 'handler', url: 'file:///srv/app/block.js', line: 31, column: 18 };

test('the watchdog files a block caught at a function\'s entry under its caller, as --report-blocked does; its log has the whole stack', async (t) => {
  // --report-blocked off, rate-limited, or at or past --watchdog: the watchdog's report is the only one.
  const { pipe, watch, asking, answer, blocked, beat } = watchedWorker();
  t.teardown(() => watch.close());
  beat();
  await asking(2);
  const at = monotonicMs();
  answer({ frames: [called, caller], at, sentAt: at - 100, atEntry: true });
  await settled();
  t.is(blocked.length, 1);
  t.deepEqual(blocked[0]!.stack, [caller], 'status names where the site is');
  t.deepEqual(blocked[0]!.entryFrame, called);
  pipe.end();

  const logged: Array<{ message: string; fields: { stack: StackFrame[] } }> = [];
  const logs = { event: (_kind: string, message: string, fields: { stack: StackFrame[] }) => logged.push({ message, fields }) } as unknown as LogSink;
  const blockedSites = new BlockedSites();
  const blockReports = new BlockReports({ logs, blockedSites, blocking() {}, changed() {} });
  const worker = Object.assign(new EventEmitter(), { id: 1, pid: 4242, kill() {} });
  blockReports.follow(worker as unknown as WorkerProcess);
  worker.emit('blocked', { ...blocked[0]!, pid: 4242 });
  t.like(blockedSites.sites(1, Date.now())[0], { function: 'handler', line: 31, count: 1 });
  t.deepEqual(logged[0]!.fields.stack, [called, caller]);
  t.regex(logged[0]!.message, /at serializeBig \(file:\/\/\/srv\/app\/block\.js:20:23\) \(caught at its entry: the block is its caller's\)\n {4}at handler/);
});
