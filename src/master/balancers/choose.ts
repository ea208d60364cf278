// How `least` and `sticky` choose a worker: pure functions, unit-tested by tables of worker states.
import { LAGGING_MS } from '../../protocol.js';

/** What the master knows of a worker's load, refreshed by every ack and every stats sample. */
export interface WorkerLoad {
  /** Open connections of the worker's servers, as of its latest ack or sample. */
  connections: number;
  /** Event-loop lag p99 of its latest sample, in ms (0 before the first one). */
  lagP99: number;
  /** Event-loop utilisation of its latest sample, 0..1. */
  elu: number;
  /** Its loop is not turning right now (no heartbeat past the stall threshold), as the master's LoopWatch sees it. */
  stalled: boolean;
}

/** A worker whose loop lag p99 is past this is skipped while a healthier one is free (`fair`'s threshold for a late tick). */
export const UNHEALTHY_LAG_MS = LAGGING_MS;
/** Connection counts this close count as a tie, broken by lag, then utilisation. */
export const NEAR_TIE = 1;

/**
 * 0 healthy; 1 lagging past UNHEALTHY_LAG_MS over its last interval (slow, but its loop turns);
 * 2 stalled right now (its loop is not turning at all): the worst, whatever its lag said.
 */
export function healthRank(load: WorkerLoad): number {
  return load.stalled ? STALLED : load.lagP99 >= UNHEALTHY_LAG_MS ? 1 : 0;
}

/** The health rank of a worker whose loop is not turning right now. */
export const STALLED = 2;

/**
 * `least`: among the candidates of the best health rank, the index of the one with the fewest
 * open connections; near-ties go to the lower loop lag, then the lower utilisation, then the
 * earlier candidate (the longest idle, as the free list is kept). O(n).
 */
export function leastBusy(loads: readonly WorkerLoad[]): number {
  if (loads.length === 0) return -1;
  const rank = Math.min(...loads.map(healthRank));
  let fewest = Infinity;
  for (const load of loads) {
    if (healthRank(load) !== rank) continue;
    if (load.connections < fewest) fewest = load.connections;
  }
  let best = -1;
  for (let i = 0; i < loads.length; i++) {
    const load = loads[i]!;
    if (healthRank(load) !== rank || load.connections > fewest + NEAR_TIE) continue;
    if (best === -1 || better(load, loads[best]!)) best = i;
  }
  return best;
}

function better(a: WorkerLoad, b: WorkerLoad): boolean {
  if (a.lagP99 !== b.lagP99) return a.lagP99 < b.lagP99;
  if (a.elu !== b.elu) return a.elu < b.elu;
  return a.connections < b.connections;
}

/**
 * `sticky`: rendezvous (highest random weight) hashing of a client address over worker ids.
 * Every address keeps its worker while that id lives; when one leaves, only its addresses move,
 * spread over the others. Ids, not pids: a reload's or restart's successor inherits its clients.
 */
export function rendezvous(key: string, ids: readonly number[]): number {
  let best = -1;
  let bestWeight = -1;
  for (const id of ids) {
    const weight = fnv1a(`${key}#${id}`);
    if (weight > bestWeight || (weight === bestWeight && id < best)) {
      best = id;
      bestWeight = weight;
    }
  }
  return best;
}

/** 32-bit FNV-1a, then a finaliser so that close inputs spread (Murmur3's fmix32). */
export function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}
