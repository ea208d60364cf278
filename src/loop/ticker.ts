// One timer for a worker's periodic instruments: the loop-delay probe (every 10 ms) and the heartbeat
// (every 10-250 ms) ride the same ticks, so an idle worker wakes up once where it woke up for each.
//
// A wake-up is what an idle worker pays for (each runs the timers phase and enters JavaScript): with
// a timer each, the probe's 100 a second and the heartbeat's 40 seldom fell together, as their
// intervals drift apart. Measured on this 2-core VM, two idle workers of each build side by side: one
// shared timer, with the heartbeat's write(2), cut an idle worker's CPU by 14-19% (BENCHMARKS.md, "The
// herd, measured to 64 workers").
//
// The timer runs at the shortest period subscribed; a subscriber with a longer one is called on the
// first tick at least its period, less half a tick, after its last call (so a 25 ms heartbeat on 10 ms
// ticks beats every 20 ms: never later than asked). The timer is unref'd: it never keeps a worker
// alive. Subscribers run in the order they subscribed, each with the tick's time (performance.now()).
import { performance } from 'node:perf_hooks';

interface Subscriber {
  periodMs: number;
  last: number;
  call: (now: number) => void;
}

const subscribers = new Set<Subscriber>();
let timer: NodeJS.Timeout | null = null;
let tickMs = 0;

function tick(): void {
  const now = performance.now();
  for (const subscriber of subscribers) {
    if (now - subscriber.last < subscriber.periodMs - tickMs / 2) continue;
    subscriber.last = now;
    subscriber.call(now);
  }
}

/** (Re)starts the timer at the shortest period subscribed, or stops it when none is. */
function rearm(): void {
  let shortest = Infinity;
  for (const subscriber of subscribers) shortest = Math.min(shortest, subscriber.periodMs);
  if (timer !== null && shortest === tickMs) return;
  if (timer !== null) clearInterval(timer);
  timer = null;
  tickMs = 0;
  if (shortest === Infinity) return;
  tickMs = shortest;
  timer = setInterval(tick, tickMs).unref();
}

/**
 * Calls `call` about every `periodMs` (an integer >= 1, checked by the caller) from the shared timer,
 * the first time one period from now. Returns the function that stops it.
 */
export function every(periodMs: number, call: (now: number) => void): () => void {
  const subscriber: Subscriber = { periodMs, last: performance.now(), call };
  subscribers.add(subscriber);
  rearm();
  return () => {
    if (!subscribers.delete(subscriber)) return;
    rearm();
  };
}

/** The shared timer's period now, in ms; 0 when nothing is subscribed (for tests). */
export function tickPeriod(): number {
  return tickMs;
}
