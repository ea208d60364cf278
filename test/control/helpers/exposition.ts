// Validators of a /metrics text: promtool when installed (scripts/ci-deps.sh), the JS parser and a line lint always.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

export interface ParsedFamily {
  name: string;
  help: string;
  type: string;
  metrics: { value?: string; labels?: Record<string, string> }[];
}
export const parsePrometheus = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => ParsedFamily[];

export interface Validation {
  /** Validators that ran, in order. */
  by: string[];
  problems: string[];
}

/** Runs `promtool check metrics` (exit status 0 and no lint output), or reports that it is not installed. */
export function promtool(text: string): { available: boolean; problems: string[] } {
  const result = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if ((result.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return { available: false, problems: [] };
  if (result.error) throw result.error;
  const problems = `${result.stdout}${result.stderr}`.split('\n').filter((line) => line.trim() !== '');
  if (result.status !== 0 && problems.length === 0) problems.push(`promtool exited with ${result.status}`);
  return { available: true, problems };
}

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = String.raw`[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"`;
const SAMPLE_RE = new RegExp(String.raw`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{${LABEL}(?:,${LABEL})*\})? (\S+)$`);
const VALUE_RE = /^(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|NaN|[+-]Inf)$/;

/**
 * What the JS parser lets through (it is lenient: `garbage{ 1` parses as a sample without a value), checked line
 * by line: HELP then TYPE once per family before its samples, families contiguous, valid names, label syntax and
 * values, counters named *_total, no series twice.
 */
function lint(text: string): string[] {
  const problems: string[] = [];
  if (text !== '' && !text.endsWith('\n')) problems.push('does not end with a newline');
  const seenFamilies = new Set<string>();
  const seenSeries = new Set<string>();
  let family: { name: string; type: string | null } | null = null;
  for (const [index, line] of text.split('\n').entries()) {
    const at = `line ${index + 1}: ${JSON.stringify(line)}`;
    if (line === '') continue;
    const help = /^# HELP (\S+) (.*)$/.exec(line);
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (help) {
      const name = help[1]!;
      if (!NAME_RE.test(name)) problems.push(`${at}: bad metric name`);
      if (seenFamilies.has(name)) problems.push(`${at}: family listed twice`);
      seenFamilies.add(name);
      family = { name, type: null };
    } else if (type) {
      if (family === null || family.name !== type[1] || family.type !== null) problems.push(`${at}: TYPE must follow its family's HELP, once`);
      else family.type = type[2]!;
      if (!['gauge', 'counter'].includes(type[2]!)) problems.push(`${at}: unexpected type`);
      if (type[2] === 'counter' && !type[1]!.endsWith('_total')) problems.push(`${at}: counter not named *_total`);
    } else if (line.startsWith('#')) {
      problems.push(`${at}: unexpected comment`);
    } else {
      const match = SAMPLE_RE.exec(line);
      if (!match) {
        problems.push(`${at}: not a sample line`);
        continue;
      }
      if (family === null || match[1] !== family.name || family.type === null) problems.push(`${at}: sample outside its family's HELP/TYPE block`);
      if (!VALUE_RE.test(match[3]!)) problems.push(`${at}: bad value`);
      const series = `${match[1]}${match[2] ?? ''}`;
      if (seenSeries.has(series)) problems.push(`${at}: duplicate series`);
      seenSeries.add(series);
    }
  }
  return problems;
}

export function validate(text: string): Validation {
  const by: string[] = [];
  const problems: string[] = [];
  const tool = promtool(text);
  if (tool.available) {
    by.push('promtool');
    problems.push(...tool.problems.map((p) => `promtool: ${p}`));
  }
  by.push('parse-prometheus-text-format', 'lint');
  try {
    parsePrometheus(text);
  } catch (error) {
    problems.push(`parse-prometheus-text-format: ${(error as Error).message}`);
  }
  problems.push(...lint(text).map((p) => `lint: ${p}`));
  return { by, problems };
}
