// Whether the stack probe's innermost frame is at its function's entry (capture.ts): V8 took the
// interrupt at the function's first check, before it ran anything, so that the block is its caller's.
//
// V8 makes that check at the function's parameter list: its `(` (past `function name`, `async name`,
// `get name`, `constructor` and the like), or an arrow's very start. A loop's back edge takes the
// interrupt too, at its keyword (`for`, `while`, `do`), and on a function's first line (a one-line
// handler, a minified bundle) that keyword can stand exactly as far in as some head would put the
// `(`: `function spin(n) { for` is `async function spin` long. The column alone then reads the loop
// as the entry and the block goes to the caller. So where the column says "entry", the frame's place
// is read in the script's source: it is the entry when the character there is the `(` of a parameter
// list that follows the function's start with nothing but its head in between (no parenthesis, brace,
// `;`, `=` or `,`: a body or an expression holds one). A frame at the function's very start (an
// arrow's parameters) is at its entry: no loop begins a function.
//
// The source comes from the file on disk, taken only when its SHA-256 is the hash V8 gives the script
// it ran (CallSite's getScriptHash): then the position is an offset into that very text. Debugger.
// getScriptSource would give any script's, but only with the Debugger domain on, whose cost (every
// loaded script reported) the probe exists to avoid. V8 hashes a script once, when first asked (about
// 10 ms a megabyte, in the worker), so the probe asks only for a frame the column calls an entry.
// Where the file is not the script (tsx's output, which it keeps in memory; eval; Node's own modules;
// a file changed since), the column decides, as before. The worker names the file: only a regular
// file is opened (untrusted-file.ts).
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { openSmallFile, smallFileStats, type OpenFile } from './untrusted-file.js';

/**
 * What the probe says of its innermost frame when the column calls it its function's entry: on the
 * function's first line, as far in as a head rebuilt from the function's name.
 */
export interface EntryClue {
  /** Columns from the function's start (its `function`, `async`, key, or an arrow's parameters) to the frame. */
  into: number;
  /** The frame's offset in its script's source. */
  position: number;
  /** V8's SHA-256 of the script's source, hex; null when the probe did not ask (not a file, or `into` 0). */
  hash: string | null;
}

/** The largest script read: the app names the file (a `//# sourceURL=` can name any), so it could name a huge one. */
const MAX_SOURCE_BYTES = 32 * 1024 * 1024;

const MAX_VERDICTS = 256;

/** Reads scripts' sources for the entry check, remembering its answers (one per process: atFunctionEntry; tests make their own). */
export class EntryReader {
  /** Answers by script, place and URL (null: the file is not the script): a site blocks again and again. */
  readonly #verdicts = new Map<string, boolean | null>();
  readonly #open: OpenFile | undefined;

  /** `open`: how the script's file is opened (fs.promises.open; a test's counts). */
  constructor({ open }: { open?: OpenFile } = {}) {
    this.#open = open;
  }

  /** Whether the innermost frame of a capture, in the script at `url`, is at its function's entry (null clue: the column says not). */
  async atFunctionEntry(url: string, clue: EntryClue | null): Promise<boolean> {
    if (clue === null) return false;
    if (clue.into === 0 || clue.hash === null || !SHA256_HEX.test(clue.hash) || !url.startsWith('file:')) return true;
    const key = `${clue.hash} ${clue.position} ${clue.into} ${url}`;
    let verdict = this.#verdicts.get(key);
    if (verdict === undefined) {
      const source = await this.#scriptSource(url, clue.hash);
      verdict = source === null ? null : opensParameters(source, clue.position, clue.into);
      if (this.#verdicts.size >= MAX_VERDICTS) this.#verdicts.delete(this.#verdicts.keys().next().value!);
      this.#verdicts.set(key, verdict);
    }
    return verdict ?? true;
  }

  /** The text of the file at `url` when its SHA-256 is `hash` (the script V8 ran is that file), else null. */
  async #scriptSource(url: string, hash: string): Promise<string | null> {
    try {
      const path = fileURLToPath(url);
      const named = await smallFileStats(path, MAX_SOURCE_BYTES);
      const file = named === null ? null : await openSmallFile(path, named, { open: this.#open });
      if (file === null) return null;
      try {
        const bytes = await file.readFile();
        return createHash('sha256').update(bytes).digest('hex') === hash ? bytes.toString('utf8') : null;
      } finally {
        await file.close();
      }
    } catch {
      return null;
    }
  }
}

const shared = new EntryReader();

/** Whether the innermost frame of a capture, in the script at `url`, is at its function's entry (null clue: the column says not). */
export function atFunctionEntry(url: string, clue: EntryClue | null): Promise<boolean> {
  return shared.atFunctionEntry(url, clue);
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * Whether `position` in `source` opens the parameter list of the function that starts `into`
 * characters before it on the same line: a `(` with only a head between (a name, `function`,
 * `async`, `*`, `get`, a quoted or bracketed key, spaces and comments without those characters).
 */
export function opensParameters(source: string, position: number, into: number): boolean {
  if (into <= 0 || position < into || source[position] !== '(') return false;
  return !/[(){};=,\n\r\u2028\u2029]/.test(source.slice(position - into, position));
}
