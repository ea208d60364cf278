// What the runner (open-loop.ts) and the generator's child process (open-loop-main.ts) say to each
// other: the run's settings as one JSON argument, then READY, GO and the result line on stdio.
import type { EngineConfig } from './open-loop-engine.js';

/** Printed by the child once loaded; the runner answers GO on stdin when its snapshots are taken. */
export const READY = 'READY';
export const GO = 'GO';
/** Prefix of the child's one result line: the LoadResult as JSON. */
export const MARKER = 'BENCH_JSON ';

/** The settings the child was given; throws naming the first bad field. */
export function parseConfig(text: string | undefined): EngineConfig {
  const config = JSON.parse(text ?? '') as EngineConfig;
  for (const name of ['port', 'rate', 'durationS', 'timeoutS', 'pool', 'maxInFlight'] as const) {
    const value = config[name];
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      throw new Error(`open-loop: expected \`${name}\` to be a positive number, got \`${String(value)}\``);
    }
  }
  if (!Array.isArray(config.paths) || config.paths.length === 0) throw new Error('open-loop: expected `paths` to hold at least one path');
  return config;
}
