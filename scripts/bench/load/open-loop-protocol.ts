// What the runner (open-loop.ts) and the generator's child process (open-loop-main.ts) say to each
// other: the run's settings as one JSON argument, then READY, GO and the result line on stdio.
import type { EngineConfig } from './open-loop-engine.js';

/** The child's settings: the run's, and how long to warm up before it. */
export interface ChildConfig extends EngineConfig {
  warmupS: number;
}

/**
 * The child always sends at least this much load before READY. A fresh Node process runs its
 * request path in the interpreter for the first few hundred ms; at 10,000 req/s that cold start put a
 * backlog of 150 ms into the first measured half second (p99 151 ms against 7 ms once warm).
 */
export const MIN_WARMUP_S = 0.5;

/** Printed by the child once loaded; the runner answers GO on stdin when its snapshots are taken. */
export const READY = 'READY';
export const GO = 'GO';
/** Prefix of the child's one result line: the LoadResult as JSON. */
export const MARKER = 'BENCH_JSON ';

/** The settings the child was given; throws naming the first bad field. */
export function parseConfig(text: string | undefined): ChildConfig {
  const config = JSON.parse(text ?? '') as ChildConfig;
  for (const name of ['port', 'rate', 'durationS', 'timeoutS', 'pool', 'maxInFlight'] as const) {
    const value = config[name];
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      throw new Error(`open-loop: expected \`${name}\` to be a positive number, got \`${String(value)}\``);
    }
  }
  if (!(typeof config.warmupS === 'number' && config.warmupS >= 0)) throw new Error(`open-loop: expected \`warmupS\` to be a number of at least 0, got \`${String(config.warmupS)}\``);
  if (!Array.isArray(config.paths) || config.paths.length === 0) throw new Error('open-loop: expected `paths` to hold at least one path');
  return config;
}
