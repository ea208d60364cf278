// Options objects (a config file, start(), connect(), reload()) refuse a key they do not know, with
// the nearest one they do: a misspelt key silently ignored is an option silently not applied.
import { UsageError } from '../errors.js';
import { configKey } from './start-options.js';

/** Throws a UsageError for the first key of `given` not in `known`; a key set to undefined counts as not given. */
export function checkKeys(where: string, given: object, known: readonly string[]): void {
  for (const [key, value] of Object.entries(given)) {
    if (value !== undefined && !known.includes(key)) throw unknownKey(where, key, known);
  }
}

/** `key` is none of `known`: which it may have meant, and all of them. */
export function unknownKey(where: string, key: string, known: readonly string[]): UsageError {
  const near = known.find((name) => name.toLowerCase() === key.toLowerCase() || name === configKey(key)) ?? known.find((name) => distance(name, key) <= 2);
  return new UsageError(`${where}: unknown key \`${key}\`${near ? ` (did you mean \`${near}\`?)` : ''}; the keys are ${known.join(', ')}`);
}

/** Levenshtein distance, for "did you mean" on a misspelt key. */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}
