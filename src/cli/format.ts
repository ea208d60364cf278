// Pure text helpers for the CLI's tables: units, alignment, sparklines, ANSI colour.

/** `850ms`-free durations for uptimes: 42s, 5m12s, 2h03m, 3d04h. */
export function formatDuration(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  const pad = (n: number): string => String(n).padStart(2, '0');
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${pad(seconds % 60)}s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours}h${pad(minutes % 60)}m`;
  return `${Math.floor(hours / 24)}d${pad(hours % 24)}h`;
}

export { formatBytes } from '../options.js';
export { printable } from '../errors.js';

/** Milliseconds of lag: 0.42, 3.1, 210. */
export function formatMs(ms: number): string {
  if (ms < 1) return ms.toFixed(2);
  if (ms < 100) return ms.toFixed(1);
  return ms.toFixed(0);
}

/** A 0..1 fraction as a whole percentage: 0.123 -> 12%. */
export function formatFraction(fraction: number): string {
  return `${Math.round(fraction * 100)}%`;
}

/** A percentage (CPU of one core, may pass 100): 14.5 -> 15%. */
export function formatPercent(percent: number): string {
  return `${Math.round(percent)}%`;
}

/** A rate: 0.5, 9.8, 310. */
export function formatRate(perSecond: number): string {
  return perSecond < 10 ? perSecond.toFixed(1) : perSecond.toFixed(0);
}

const SPARKS = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/**
 * One character per value, ▁ for 0 (or less) up to █ for `max` (or more). Give several lines
 * the same `max` to make them comparable.
 */
export function sparkline(values: readonly number[], max: number): string {
  return values.map((value) => sparkChar(value, max)).join('');
}

export function sparkChar(value: number, max: number): string {
  if (!(max > 0) || !(value > 0)) return SPARKS[0]!;
  const level = Math.ceil((Math.min(value, max) / max) * SPARKS.length) - 1;
  return SPARKS[Math.max(0, level)]!;
}

export type Level = 'ok' | 'warn' | 'bad';

/** Loop lag p99 worth a look at 50 ms, a problem at 100 ms. */
export const LAG_WARN_MS = 50;
export const LAG_BAD_MS = 100;
/** ELU: a loop busy 70% of the time has little headroom; at 90% it is saturated. */
export const ELU_WARN = 0.7;
export const ELU_BAD = 0.9;

export function lagLevel(ms: number): Level {
  return ms >= LAG_BAD_MS ? 'bad' : ms >= LAG_WARN_MS ? 'warn' : 'ok';
}

export function eluLevel(fraction: number): Level {
  return fraction >= ELU_BAD ? 'bad' : fraction >= ELU_WARN ? 'warn' : 'ok';
}

const LEVEL_CODES: Record<Level, string> = { ok: '', warn: '\x1b[33m', bad: '\x1b[1;31m' };
export const RESET = '\x1b[0m';
export const BOLD = '\x1b[1m';
export const DIM = '\x1b[2m';

/** `text` in the colour of `level` (none for ok) when `colour` is on. */
export function paint(text: string, level: Level, colour: boolean): string {
  const code = LEVEL_CODES[level];
  return colour && code ? `${code}${text}${RESET}` : text;
}

/** `text` with an ANSI SGR code when `colour` is on. */
export function style(text: string, code: string, colour: boolean): string {
  return colour ? `${code}${text}${RESET}` : text;
}

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;

/** Display width, ignoring ANSI escape sequences (every other character counts one column). */
export function visibleWidth(text: string): number {
  return [...text.replace(ANSI, '')].length;
}

/** Cuts `text` to `width` columns, keeping escape sequences intact and resetting colour after a cut. */
export function truncate(text: string, width: number): string {
  if (visibleWidth(text) <= width) return text;
  let out = '';
  let used = 0;
  for (let i = 0; i < text.length && used < width; ) {
    ANSI.lastIndex = i;
    const escape = ANSI.exec(text);
    if (escape && escape.index === i) {
      out += escape[0];
      i += escape[0].length;
      continue;
    }
    const char = String.fromCodePoint(text.codePointAt(i)!);
    out += char;
    i += char.length;
    used++;
  }
  return `${out}${text.includes('\x1b[') ? RESET : ''}`;
}

/**
 * The width plain output is fitted to: the terminal's when stdout is one, else `COLUMNS` when set
 * (a positive whole number), else unlimited (piped output keeps every column; --json is for scripts).
 */
export function outputWidth(out: { isTTY?: boolean; columns?: number } = process.stdout, env: NodeJS.ProcessEnv = process.env): number {
  if (out.isTTY && out.columns && out.columns > 0) return out.columns;
  const columns = env.COLUMNS;
  return columns !== undefined && /^[1-9]\d{0,4}$/.test(columns) ? Number(columns) : Infinity;
}

export type Align = 'left' | 'right';

/**
 * Lays out rows in columns two spaces apart; widths come from the visible text, so cells may
 * carry colour. `align` gives each column's alignment (default left). No trailing spaces.
 */
export function table(rows: readonly (readonly string[])[], align: readonly Align[] = []): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, visibleWidth(cell))));
  return rows.map((row) =>
    row
      .map((cell, i) => {
        const gap = ' '.repeat((widths[i] ?? 0) - visibleWidth(cell));
        if (align[i] === 'right') return gap + cell;
        return i === row.length - 1 ? cell : cell + gap;
      })
      .join('  ')
      .trimEnd(),
  );
}
