import { availableParallelism } from 'node:os';
import { UsageError } from './errors.js';

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;
const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses `500ms`, `10s`, `2m`, `1h` or a bare number of milliseconds. */
export function parseDuration(option: string, value: unknown): number {
  const text = String(value).trim();
  const match = DURATION.exec(text);
  if (!match) {
    throw new UsageError(`Expected \`--${option}\` to be a duration such as 500ms, 10s or 2m, got \`${text}\``);
  }
  return Math.round(Number(match[1]) * DURATION_UNITS[match[2] ?? 'ms']!);
}

const SIZE = /^(\d+(?:\.\d+)?)([KMGT]?)(i?B)?$/i;
const SIZE_UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** Parses `512M`, `1G`, `300MB`, `1.5GiB` or a bare number of bytes (binary units). */
export function parseSize(option: string, value: unknown): number {
  const text = String(value).trim();
  const match = SIZE.exec(text);
  if (!match) {
    throw new UsageError(`Expected \`--${option}\` to be a size such as 512M or 1G, got \`${text}\``);
  }
  return Math.round(Number(match[1]) * SIZE_UNITS[match[2]!.toUpperCase()]!);
}

/** Parses `-i`: a positive integer or `max` (one worker per available core). */
export function parseInstances(value: unknown): number {
  const text = String(value).trim();
  if (text === 'max') return availableParallelism();
  if (!/^\d+$/.test(text) || Number(text) < 1) {
    throw new UsageError(`Expected \`--instances\` to be a positive integer or \`max\`, got \`${text}\``);
  }
  return Number(text);
}

/** Accepts one of a fixed set of words. */
export function parseChoice<T extends string>(option: string, value: unknown, choices: readonly T[]): T {
  const text = String(value);
  if (!(choices as readonly string[]).includes(text)) {
    throw new UsageError(`Expected \`--${option}\` to be one of ${choices.join(', ')}, got \`${text}\``);
  }
  return text as T;
}

/** Cluster names become file names in the runtime directory, so keep them to a safe alphabet. */
export function parseName(value: unknown): string {
  const text = String(value);
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(text)) {
    throw new UsageError(`Expected \`--name\` to be 1-64 letters, digits, '.', '_' or '-', got \`${text}\``);
  }
  return text;
}
