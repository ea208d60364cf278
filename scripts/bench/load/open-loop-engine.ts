// The open-loop engine, run inside the generator's child process: one pacing loop hands out requests at
// their due times, a FIFO queue holds those with no free connection, a sweep every 100 ms times out what
// waited too long. Latency is taken from each request's due time (no coordinated omission): when the
// generator, the pool or the system falls behind, the delay lands in the latency. Whether the generator
// itself kept up is judged apart, from its own pacing lateness and send rate.
//
// Pacing is one setTimeout re-armed for the next due request, plus a look at the clock whenever a
// response or a close wakes the loop anyway. libuv's timers run on a millisecond clock, so the timer
// alone sends in batches up to ~1 ms late; at the rates where that matters responses arrive every few
// tens of microseconds, and sending what has come due on each of them keeps the lag well under a
// millisecond for the price of one clock read. A setImmediate spin would pace finer still but burn a
// whole core, and this process shares 2 cores with the system under test.
import { FreshConnections } from './fresh-connections.js';
import { requestBytes } from './http-response.js';
import { KeepAlivePool } from './keep-alive-pool.js';
import { Tally } from './open-loop-tally.js';
import { dueAtMs, dueBy, judgeRate, scheduledCount, waitMs } from './schedule.js';
import type { Transport } from './transport.js';
import type { LoadResult } from './types.js';

export interface EngineConfig {
  host: string;
  port: number;
  /** Requests per second. */
  rate: number;
  durationS: number;
  timeoutS: number;
  /** Paths the requests cycle through, in order. */
  paths: string[];
  keepAlive: boolean;
  /** Keep-alive: the pool's size (all opened up front). */
  pool: number;
  /** New connection per request: most connections open at once. */
  maxInFlight: number;
}

const SWEEP_MS = 100;
const DRAIN_POLL_MS = 10;

/** Runs one open-loop measurement and resolves with its figures. */
export async function runOpenLoop(config: EngineConfig): Promise<LoadResult> {
  const { rate, durationS } = config;
  const timeoutMs = config.timeoutS * 1000;
  // One buffer per distinct path, formatted once; the cycle only points at them.
  const host = `${config.host}:${config.port}`;
  const byPath = new Map(config.paths.map((path) => [path, requestBytes(path, { host, keepAlive: config.keepAlive })]));
  const requests = config.paths.map((path) => byPath.get(path) as Buffer);

  let start = 0;
  const tally = new Tally((index) => dueAtMs(start, index, rate), timeoutMs);
  /** Requests handed out by the pacing loop so far (indices 0..next-1). */
  let next = 0;
  /** The oldest request still waiting for a connection: the queue is exactly [head, next). */
  let head = 0;
  /** Between the first due request and the last send: the clock decides what is due. */
  let running = false;
  /** Set once the figures are taken: connections closing afterwards must not start queued requests. */
  let finished = false;
  const context = {
    host: config.host,
    port: config.port,
    request: (index: number) => requests[index % requests.length] as Buffer,
    tally,
    freed: () => {
      if (running) sendDue(performance.now());
      else if (!finished) pump();
    },
  };
  const transport: Transport = config.keepAlive ? new KeepAlivePool(context, config.pool) : new FreshConnections(context, config.maxInFlight);

  /** Starts waiting requests, oldest first, while connections are free; drops those past the timeout. */
  function pump(): void {
    while (head < next) {
      const now = performance.now();
      if (now - tally.due(head) > timeoutMs) {
        tally.fail('timeouts', head);
        head++;
        continue;
      }
      if (!transport.tryStart(head)) return;
      tally.startDelay.record((now - tally.due(head)) * 1000);
      head++;
    }
  }

  const cpuBefore = process.cpuUsage();
  const eluBefore = performance.eventLoopUtilization();
  const openedAt = performance.now();
  await transport.open();

  const total = scheduledCount(rate, durationS);
  let lastSendAt = 0;

  /** Hands out every request due by `now`, then starts what a free connection can take. */
  function sendDue(now: number): void {
    const due = dueBy(now - start, rate, total);
    if (due > next) {
      const fresh = due - next;
      for (; next < due; next++) tally.sendLag.record((now - tally.due(next)) * 1000);
      lastSendAt = now;
      if (next === total) running = false;
      pump();
      // The queue is FIFO, so whatever still waits is the youngest: at most this batch is new to it.
      const waiting = next - head;
      tally.queued += Math.min(fresh, waiting);
      if (waiting > tally.maxQueue) tally.maxQueue = waiting;
    } else {
      pump();
    }
  }

  start = performance.now();
  running = true;
  await new Promise<void>((resolve) => {
    let nextSweep = start + SWEEP_MS;
    const sweep = (now: number) => {
      if (now < nextSweep) return;
      nextSweep = now + SWEEP_MS;
      transport.expire(now - timeoutMs);
      pump();
    };
    const tick = () => {
      const now = performance.now();
      sendDue(now);
      sweep(now);
      if (next < total) setTimeout(tick, waitMs(performance.now(), start, next, rate));
      else drain();
    };
    // Every request is sent: wait for the answers, or until the last one due has timed out.
    const deadline = dueAtMs(start, total, rate) + timeoutMs + SWEEP_MS;
    const drain = () => {
      const now = performance.now();
      sweep(now);
      if ((head === next && transport.inFlight === 0) || now > deadline) resolve();
      else setTimeout(drain, DRAIN_POLL_MS);
    };
    tick();
  });
  finished = true;
  transport.close();

  const wallS = (performance.now() - openedAt) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const cpuS = (cpu.user + cpu.system) / 1e6;
  const lifetime = process.cpuUsage();
  const sendRps = next / Math.max(durationS, (lastSendAt - start) / 1000 + 1 / rate);
  const sendLagMs = { p50: tally.sendLag.percentile(0.5) / 1000, p99: tally.sendLag.percentile(0.99) / 1000, max: tally.sendLag.max / 1000 };
  const judged = judgeRate({ rate, sendRate: sendRps, sendLagP99Ms: sendLagMs.p99 });
  // Requests still waiting for a connection at the deadline (the sweep counted those in flight).
  for (; head < next; head++) tally.fail('timeouts', head);
  const { connect, read, write, timeouts } = tally.failures;
  const socket = connect + read + write;
  return {
    requests: tally.completed,
    durationS,
    rps: tally.completed / durationS,
    latencyMs: tally.latencySummary(),
    errors: { socket, non2xx: tally.non2xx, timeouts, total: socket + tally.non2xx + timeouts },
    open: {
      mode: config.keepAlive ? 'keep-alive' : 'new-connection',
      targetRps: rate,
      scheduled: total,
      sent: next,
      sendRps,
      heldRate: judged.held,
      ...(judged.why ? { notHeld: judged.why } : {}),
      sendLagMs,
      startDelayMs: { p99: tally.startDelay.percentile(0.99) / 1000, max: tally.startDelay.max / 1000 },
      queued: tally.queued,
      maxQueue: tally.maxQueue,
      connections: tally.connections,
      reconnects: tally.reconnects,
      errors: { connect, read, write, non2xx: tally.non2xx, timeouts },
      cpuS,
      cpuPct: (cpuS / wallS) * 100,
      elu: performance.eventLoopUtilization(eluBefore).utilization,
      lifetimeCpuS: (lifetime.user + lifetime.system) / 1e6,
    },
  };
}
