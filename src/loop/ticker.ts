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
// alive. Subscribers run in the order they subscribed, each with the tick's time (performance.now()),
// how late the tick came and the loop's busy time (Tick: read once per tick for all of them).
//
// A subscriber may let its ticks stretch while the loop is idle (`stretch`: the delay probe, which
// then accounts for the time between two ticks from the loop's busy time, delay-monitor.ts): once
// QUIET_TICKS ticks in a row found the loop busy for less than QUIET_MS since the tick before, the
// timer runs at the shortest period of the others (the heartbeat's), at most IDLE_TICK_MS, and it is
// called on every tick (that is not shorter than its own period); the first tick that finds the loop busy brings the short period back. An idle
// worker with the default heartbeat then wakes 40 times a second instead of 100: a bare 10 ms timer
// costs 0.8% of a core on this VM, a 20 ms one 0.5%; measured side by side, an idle worker's CPU fell
// 29-35% (BENCHMARKS.md, "The herd, measured to 64 workers": "An idle worker's ticks").
import { performance } from 'node:perf_hooks';

/** What each call is told of its tick besides its time, read once for every subscriber. */
export interface Tick {
  /** How much later than due this tick came, in ms: the time since the tick before, less the period then in force. */
  lateMs: number;
  /** The loop's busy time so far (ELU's `active`, cumulative, in ms). */
  activeMs: number;
}

interface Subscriber {
  periodMs: number;
  stretch: boolean;
  last: number;
  call: (now: number, tick: Tick) => void;
}

/** Busy time between two ticks under which the loop counts as idle, in ms (a tick's own work is ~0.1 ms). */
const QUIET_MS = 1;
/** Quiet ticks in a row before the ticks stretch. */
const QUIET_TICKS = 5;
/** The longest tick while idle, when no subscriber that does not stretch asks for a shorter one. */
export const IDLE_TICK_MS = 100;

const subscribers = new Set<Subscriber>();
let timer: NodeJS.Timeout | null = null;
let tickMs = 0;
/** Whether the ticks are stretched (the loop was idle), and the quiet ticks in a row so far. */
let idle = false;
let quiet = 0;
/** The previous tick's time and busy time (or the timer's start). */
let lastTick = 0;
let lastActive = 0;

function tick(): void {
  const now = performance.now();
  const activeMs = performance.eventLoopUtilization().active;
  const info: Tick = { lateMs: now - lastTick - tickMs, activeMs };
  const busyMs = activeMs - lastActive;
  lastTick = now;
  lastActive = activeMs;
  for (const subscriber of subscribers) {
    // A stretching subscriber is called on every tick while the ticks are stretched (never more often than its period).
    const periodMs = idle && subscriber.stretch ? Math.max(tickMs, subscriber.periodMs) : subscriber.periodMs;
    if (now - subscriber.last < periodMs - tickMs / 2) continue;
    subscriber.last = now;
    subscriber.call(now, info);
  }
  quiet = busyMs < QUIET_MS ? quiet + 1 : 0;
  if (idle === (quiet >= QUIET_TICKS)) return;
  idle = !idle;
  rearm();
}

/** The timer's period: the shortest subscribed; while idle, the shortest of those that do not stretch, at most IDLE_TICK_MS. */
function period(): number {
  let shortest = Infinity;
  let stretching = false;
  for (const subscriber of subscribers) {
    if (idle && subscriber.stretch) stretching = true;
    else shortest = Math.min(shortest, subscriber.periodMs);
  }
  return stretching ? Math.min(shortest, IDLE_TICK_MS) : shortest;
}

/** (Re)starts the timer at period(), or stops it when nothing is subscribed. */
function rearm(): void {
  const next = period();
  if (timer !== null && next === tickMs) return;
  // Started afresh: busy time counts from now.
  if (timer === null) lastActive = performance.eventLoopUtilization().active;
  else clearInterval(timer);
  lastTick = performance.now();
  timer = null;
  tickMs = 0;
  if (next === Infinity) {
    idle = false;
    quiet = 0;
    return;
  }
  tickMs = next;
  timer = setInterval(tick, tickMs).unref();
}

/**
 * Calls `call` about every `periodMs` (an integer >= 1, checked by the caller) from the shared timer,
 * the first time one period from now; with `stretch`, less often while the loop is idle (above).
 * Returns the function that stops it.
 */
export function every(periodMs: number, call: (now: number, tick: Tick) => void, { stretch = false } = {}): () => void {
  const subscriber: Subscriber = { periodMs, stretch, last: performance.now(), call };
  subscribers.add(subscriber);
  rearm();
  return () => {
    if (!subscribers.delete(subscriber)) return;
    rearm();
  };
}

/** The shared timer's period now, in ms; 0 when nothing is subscribed. */
export function tickPeriod(): number {
  return tickMs;
}
