// Command-line values, parsed and bounded at the boundary: every parser names the flag, the
// range it accepts and the value received, in one line (exit code 2 through UsageError).
import { constants } from 'node:os';
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { usableCpus } from './system/cpus.js';
import { logicalCwd } from './system/working-dir.js';
import { quoted, UsageError } from './errors.js';

/** Node's timers take at most 2^31-1 ms (about 24.8 days); a longer delay silently becomes 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The most workers one master runs (`-i`, `scale`). The master forks synchronously and keeps
 * per-worker state, pipes and timers; past this a typo (`-i 100000`) takes the machine down.
 */
export const MAX_INSTANCES = 1024;

/** A duration as typed: a number, then an optional unit (no unit: seconds). The config schema uses its source. */
export const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/;
const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export interface DurationRange {
  /** The least value accepted besides 0 (when `off`); default 1 ms. */
  min?: number;
  /** Default MAX_TIMER_MS. */
  max?: number;
  /** 0 is accepted as "off" on top of the range. */
  off?: boolean;
}

/**
 * Parses `500ms`, `10s`, `2m`, `1h`, `1d` or a bare number of seconds (`--grace 10`, as every other
 * process manager reads it), within a range: by default from 1 ms to MAX_TIMER_MS. The range is
 * judged on the value as given, then it is rounded to the millisecond: `0.5ms` is under 1 ms and
 * `9.5ms` under 10 ms, as the JSON Schema's minimum says (start-options.ts), not a value that rounds
 * into the range.
 */
export function parseDuration(option: string, value: unknown, { min = 1, max = MAX_TIMER_MS, off = false }: DurationRange = {}): number {
  const text = String(value).trim();
  const expected = `${off ? '0 (off) or ' : ''}a duration from ${formatMs(min)} to ${formatMs(max)}`;
  const match = DURATION.exec(text);
  if (!match) {
    throw new UsageError(`Expected \`--${option}\` to be ${expected}, such as 500ms, 10s or 2m, got ${quoted(value)}`);
  }
  // To the nanosecond: a decimal times a unit is not exact in binary (2147483.647 s makes
  // 2147483647.0000002 ms), and must not fall out of a range its decimal is in.
  const exact = Math.round(Number(match[1]) * DURATION_UNITS[match[2] ?? 's']! * 1e6) / 1e6;
  // Only a typed 0 is 0: a sliver under 1 ms (`0.0001`, `0.4ms`) would turn a check off, or make a
  // grace period none, without anyone asking.
  if (exact === 0 && (off || min === 0)) return 0;
  if (exact > 0 && exact < 1) throw new UsageError(`Expected \`--${option}\` to be ${expected}, got ${quoted(value)} (under 1 ms)`);
  if (exact >= min && exact <= max) return Math.round(exact);
  throw new UsageError(`Expected \`--${option}\` to be ${expected}, got ${quoted(value)}`);
}

/**
 * A bound as people read it: `10ms`, `1s`, `1m`; the timer limit as `2147483647 ms (about 24.8 days)`:
 * it is not a whole number of days, and `24d` read as a limit that refused `24.5d`, which is taken.
 */
export function formatMs(ms: number): string {
  if (ms === MAX_TIMER_MS) return `${MAX_TIMER_MS} ms (about 24.8 days)`;
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

const SIZE = /^(\d+(?:\.\d+)?)([KMGT]?)(i?B)?$/i;
const SIZE_UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/**
 * `--max-memory` bounds. Below 16 MiB not even an empty Node.js process fits, so every worker would
 * be replaced forever; 1 TiB is far beyond any one worker's heap, and keeps byte counts exact.
 */
export const MIN_MEMORY_LIMIT = 16 * 1024 ** 2;
export const MAX_MEMORY_LIMIT = 1024 ** 4;

/** Parses `512M`, `1G`, `300MB`, `1.5GiB` or a bare number of bytes (binary units), within [min, max]. */
export function parseSize(option: string, value: unknown, { min = MIN_MEMORY_LIMIT, max = MAX_MEMORY_LIMIT }: { min?: number; max?: number } = {}): number {
  const text = String(value).trim();
  const match = SIZE.exec(text);
  if (!match) {
    throw new UsageError(`Expected \`--${option}\` to be a size such as 512M or 1G, got ${quoted(value)}`);
  }
  const bytes = Math.round(Number(match[1]) * SIZE_UNITS[match[2]!.toUpperCase()]!);
  if (bytes < min || bytes > max) {
    throw new UsageError(`Expected \`--${option}\` to be a size from ${formatSize(min)} to ${formatSize(max)}, got ${quoted(value)}`);
  }
  return bytes;
}

function formatSize(bytes: number): string {
  for (const unit of ['T', 'G', 'M', 'K'] as const) {
    const size = SIZE_UNITS[unit]!;
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return String(bytes);
}

/**
 * Parses a whole number from `min` to `max`. Takes the raw text: yargs' `type: 'number'` turns
 * `abc` into NaN and `1e3` into 1000, neither of which the user typed.
 */
export function parseInteger(option: string, value: unknown, { min, max }: { min: number; max: number }): number {
  const text = String(value).trim();
  const number = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(number >= min && number <= max)) {
    throw new UsageError(`Expected \`--${option}\` to be an integer from ${min} to ${max}, got ${quoted(value)}`);
  }
  return number;
}

/** Parses `-i`: an integer from 1 to MAX_INSTANCES, or `max` (one worker per CPU this process may use, a cgroup's quota included). */
export function parseInstances(value: unknown): number {
  const text = String(value).trim();
  if (text === 'max') return Math.min(usableCpus().cpus, MAX_INSTANCES);
  const number = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(number >= 1 && number <= MAX_INSTANCES)) {
    throw new UsageError(`Expected \`--instances\` to be an integer from 1 to ${MAX_INSTANCES} or \`max\`, got ${quoted(value)}`);
  }
  return number;
}

/**
 * `--cwd`: a directory, made absolute from where clusterd was started (by the path the shell shows)
 * but not resolved through symlinks; none given: that directory itself.
 */
export function parseWorkingDir(value: string | undefined): string {
  const here = logicalCwd();
  if (value === undefined) return here;
  const text = value.trim();
  const dir = resolve(here, text);
  let why: string | null = null;
  try {
    if (!statSync(dir).isDirectory()) why = 'not a directory';
  } catch (error) {
    why = (error as NodeJS.ErrnoException).code ?? 'unreadable';
  }
  if (why !== null) throw new UsageError(`Expected \`--cwd\` to be a directory, got ${quoted(value)} (${why})`);
  return dir;
}

/** Accepts one of a fixed set of words. */
export function parseChoice<T extends string>(option: string, value: unknown, choices: readonly T[]): T {
  const text = String(value);
  if (!(choices as readonly string[]).includes(text)) {
    throw new UsageError(`Expected \`--${option}\` to be one of ${choices.join(', ')}, got ${quoted(value)}`);
  }
  return text as T;
}

/**
 * Signals that cannot be --kill-signal: the kernel's SIGKILL and SIGSTOP cannot be handled, and
 * SIGUSR1 opens Node's inspector (`clusterd stack` and `profile` send it to the workers).
 */
const UNFIT_SIGNALS: Record<string, string> = {
  SIGKILL: 'it cannot be handled',
  SIGSTOP: 'it cannot be handled',
  SIGUSR1: "it opens Node's inspector, which clusterd stack and profile use",
};

/** The signals --kill-signal accepts: every one Node knows, less UNFIT_SIGNALS. */
export function killSignals(): string[] {
  return Object.keys(constants.signals).filter((name) => !(name in UNFIT_SIGNALS));
}

/** Parses a signal name Node knows (`os.constants.signals`: SIGTERM, SIGINT, SIGUSR2...) that an app can listen for. */
export function parseSignal(option: string, value: unknown): NodeJS.Signals {
  const text = String(value).trim();
  if (!Object.hasOwn(constants.signals, text)) {
    throw new UsageError(`Expected \`--${option}\` to be a signal name such as SIGTERM, SIGINT or SIGUSR2, got ${quoted(value)}`);
  }
  const why = UNFIT_SIGNALS[text];
  if (why) throw new UsageError(`Expected \`--${option}\` to be a signal the app can listen for, got ${quoted(value)}: ${why}`);
  return text as NodeJS.Signals;
}

/** Cluster names become file names in the runtime directory, so keep them to a safe alphabet. */
export const CLUSTER_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** What a cluster name may be, in words. */
export const CLUSTER_NAME_RULE = "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit";

export function parseName(value: unknown): string {
  const text = String(value);
  if (!CLUSTER_NAME_PATTERN.test(text)) {
    throw new UsageError(`Expected \`--name\` to be ${CLUSTER_NAME_RULE}, got ${quoted(value)}`);
  }
  return text;
}

/**
 * The name a cluster gets from its entry file's name when no --name is given: `my app.js` is
 * `my-app`, `.hidden.js` is `hidden`; null when nothing of it fits (then --name is needed).
 */
export function nameFromEntry(base: string): string | null {
  const name = base
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[._-]+/, '')
    .slice(0, 64);
  return CLUSTER_NAME_PATTERN.test(name) ? name : null;
}

/**
 * `--node-arg`s: node flags, each a word of its own (`--max-old-space-size=512`), or a flag's value
 * right after a flag that takes one (`--require`, `./setup.js`). Anything else would reach node as
 * the script to run, or as nothing, and fail every worker's boot with a message about something else.
 */
export function parseNodeArgs(value: unknown): string[] {
  if (value === undefined) return [];
  const args = Array.isArray(value) ? (value as unknown[]) : [value];
  const expected = 'a node flag such as --max-old-space-size=512';
  args.forEach((arg, index) => {
    if (typeof arg !== 'string' || arg.trim() === '') throw new UsageError(`Expected \`--node-arg\` to be ${expected}, got ${quoted(arg)}`);
    const previous = args[index - 1];
    const isValue = typeof previous === 'string' && /^-/.test(previous) && !previous.includes('=') && previous !== '--';
    if (!arg.startsWith('-') && !isValue) throw new UsageError(`Expected \`--node-arg\` to be ${expected} (or the value of the flag before it), got \`${arg}\``);
    if (arg === '--' || arg === '-') throw new UsageError(`Expected \`--node-arg\` to be ${expected}, got \`${arg}\`: it would end node's options`);
  });
  return args as string[];
}

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** Binary units, three significant digits: 512 B, 80.0 MiB, 1.25 GiB. */
export function formatBytes(bytes: number): string {
  let value = Math.max(0, bytes);
  let unit = 0;
  while (value >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return `${Math.round(value)} B`;
  return `${value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2)} ${BYTE_UNITS[unit]}`;
}
