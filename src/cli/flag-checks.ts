// What yargs lets through on a command line and every command would otherwise take in silence: a
// flag given twice (`-i 2 -i 4` became the value `2,4`), a flag with no value (`logs -n` became the
// default), a yes/no flag given a word (`--json=banana` became false). Checked once, for every
// command, against the options that command declares.
import { UsageError } from '../errors.js';

/** The part of yargs' getOptions() read here. */
export interface DeclaredOptions {
  key: Record<string, unknown>;
  array: string[];
  boolean: string[];
  string: string[];
  alias: Record<string, string[]>;
}

const BOOLEAN_WORDS = new Set(['true', 'false']);

/** `flag` was given no value; `next`, the word after it, which starts with a dash (a value that does goes after an `=`). */
export function needsValue(flag: string, next?: string): UsageError {
  return new UsageError(`\`${flag}\` needs a value${next === undefined ? '' : ` (one that starts with -: ${flag}=${next})`}`);
}

/**
 * Throws a UsageError for the first flag given twice, given no value, or, for a yes/no flag, given a
 * word other than true or false. `raw`: the command line as typed, up to `--` (the app's arguments).
 */
export function checkFlags(args: Record<string, unknown>, options: DeclaredOptions, raw: readonly string[]): void {
  const arrays = new Set(options.array);
  const strings = new Set(options.string);
  const booleans = new Set(options.boolean);
  const end = raw.indexOf('--');
  const tokens = end === -1 ? raw : raw.slice(0, end);
  // The flags typed. A positional (a control command's NAME, scale's count) is an option to yargs
  // too: one given as an empty word is its command's to refuse by the name its usage gives it, not
  // a `--count` that needs a value, a flag nobody typed.
  const typed = new Set(tokens.flatMap((token) => /^--?([^=]+)/.exec(token)?.[1] ?? []));
  // Each option once, by its longest name (yargs sets every alias: `-n` is also `lines`).
  const seen = new Set<string>();
  for (const key of Object.keys(options.key)) {
    const names = [key, ...(options.alias[key] ?? [])];
    const name = names.reduce((longest, candidate) => (candidate.length > longest.length ? candidate : longest));
    if (seen.has(name)) continue;
    names.forEach((candidate) => seen.add(candidate));
    const value = args[key];
    const flag = `${name.length === 1 ? '-' : '--'}${name}`;
    if (Array.isArray(value) && !arrays.has(key)) throw new UsageError(`\`${flag}\` was given more than once (${value.map((one) => `\`${String(one)}\``).join(', ')}): give it once`);
    if (strings.has(key) && (value === '' || (Array.isArray(value) && value.includes(''))) && names.some((candidate) => typed.has(candidate))) throw needsValue(flag);
    // yargs keeps the last of a yes/no flag given twice (`--wait-ready ... --no-wait-ready` ran without it): refused as a value flag's is.
    if (booleans.has(key)) {
      const given = tokens.filter((token) => names.some((candidate) => new RegExp(`^--?(no-)?${candidate.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(=.*)?$`).test(token)));
      if (given.length > 1) throw new UsageError(`\`${flag}\` was given more than once (${given.map((one) => `\`${one}\``).join(', ')}): give it once`);
    }
  }
  tokens.forEach((token, index) => {
    const withValue = /^--?([^=]+)=(.*)$/.exec(token);
    if (withValue) {
      const [, name, value] = withValue as unknown as [string, string, string];
      if (booleans.has(name) && !BOOLEAN_WORDS.has(value)) throw new UsageError(`\`--${name}\` is a yes/no flag: give it alone, or as --${name}=true or --${name}=false, got \`${token}\``);
      if ((strings.has(name) || arrays.has(name)) && value === '') throw needsValue(token.slice(0, -1));
      return;
    }
    // A flag that takes a value, last on the line or followed by another flag: yargs would take its
    // default (`logs -n`). (A negative number is a value: its parser refuses it with the range.)
    const bare = /^--?([^=]+)$/.exec(token)?.[1];
    const next = tokens[index + 1];
    if (bare !== undefined && (strings.has(bare) || arrays.has(bare)) && !booleans.has(bare) && (next === undefined || (next.startsWith('-') && !/^-\d/.test(next)))) {
      throw needsValue(token, next);
    }
  });
}
