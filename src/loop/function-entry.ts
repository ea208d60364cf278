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
//
// A blocked worker's sites are mostly in one script (an app's bundle), each new one asking again. So a
// file is read once, not once a place: its SHA-256 is kept by the file's identity (device, inode, size,
// times), so that a file that is not the script (tsx's output) is not read again until it changes, and
// the text of the last MAX_SOURCES scripts that matched is kept by hash; two captures asking at once
// share one read. The read holds the master's loop a millisecond or so at a time: the file is hashed
// and decoded a chunk at a time between reads, and its text kept as those chunks (joining them would
// cost as much as decoding). The cap (MAX_SOURCE_BYTES) bounds what is kept, and what the worker
// spends hashing a script the master would not read (capture.ts).
import type { Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
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
export const MAX_SOURCE_BYTES = 8 * 1024 * 1024;

/** Scripts whose text is kept (at most MAX_SOURCE_BYTES each): a blocked worker's sites are mostly in one. */
const MAX_SOURCES = 2;
/** Files whose SHA-256 is kept, and answers kept. */
const MAX_DIGESTS = 256;
const MAX_VERDICTS = 256;
/** Bytes hashed and decoded between two reads: about a millisecond of the master's loop. */
const CHUNK_BYTES = 256 * 1024;

/** Reads scripts' sources for the entry check, remembering what it read (one per process: atFunctionEntry; tests make their own). */
export class EntryReader {
  /** Answers by script and place: the hash names the text, wherever its file is. */
  readonly #verdicts = new Map<string, boolean>();
  /** The text of scripts that matched their file, by hash, as chunks: the last MAX_SOURCES. */
  readonly #sources = new Map<string, string[]>();
  /** SHA-256 of files by identity: a file that is not the script is not read again while it is unchanged. */
  readonly #digests = new Map<string, string>();
  /** Reads under way by hash and URL, shared by the captures that ask meanwhile. */
  readonly #reading = new Map<string, Promise<string[] | null>>();
  readonly #open: OpenFile | undefined;

  /** `open`: how the script's file is opened (fs.promises.open; a test's counts). */
  constructor({ open }: { open?: OpenFile } = {}) {
    this.#open = open;
  }

  /** Whether the innermost frame of a capture, in the script at `url`, is at its function's entry (null clue: the column says not). */
  async atFunctionEntry(url: string, clue: EntryClue | null): Promise<boolean> {
    if (clue === null) return false;
    const { into, position, hash } = clue;
    if (into === 0 || hash === null || !SHA256_HEX.test(hash) || !url.startsWith('file:')) return true;
    const key = `${hash} ${position} ${into}`;
    let verdict = this.#verdicts.get(key);
    if (verdict === undefined) {
      const source = await this.#source(url, hash);
      if (source === null) return true;
      verdict = position >= into && opensParameters(between(source, position - into, position + 1), into, into);
      keep(this.#verdicts, key, verdict, MAX_VERDICTS);
    }
    return verdict;
  }

  /** The text of the script whose SHA-256 is `hash` (as chunks), from its file at `url`; null when that file is not it. */
  #source(url: string, hash: string): Promise<string[] | null> {
    const kept = this.#sources.get(hash);
    if (kept !== undefined) {
      keep(this.#sources, hash, kept, MAX_SOURCES);
      return Promise.resolve(kept);
    }
    const key = `${hash} ${url}`;
    let reading = this.#reading.get(key);
    if (reading === undefined) {
      reading = this.#read(url, hash).finally(() => this.#reading.delete(key));
      this.#reading.set(key, reading);
    }
    return reading;
  }

  async #read(url: string, hash: string): Promise<string[] | null> {
    try {
      const path = fileURLToPath(url);
      const named = await smallFileStats(path, MAX_SOURCE_BYTES);
      if (named === null) return null;
      const file = identity(named);
      const known = this.#digests.get(file);
      if (known !== undefined && known !== hash) return null;
      const handle = await openSmallFile(path, named, { open: this.#open });
      if (handle === null) return null;
      let read: { digest: string; source: string[] };
      try {
        read = await readHashed(handle, named.size);
      } finally {
        await handle.close();
      }
      keep(this.#digests, file, read.digest, MAX_DIGESTS);
      if (read.digest !== hash) return null;
      keep(this.#sources, hash, read.source, MAX_SOURCES);
      return read.source;
    } catch {
      return null;
    }
  }
}

/** A file's identity: the same while it is unchanged (a write changes its times, a new file its inode). */
function identity({ dev, ino, size, mtimeMs, ctimeMs }: Stats): string {
  return `${dev} ${ino} ${size} ${mtimeMs} ${ctimeMs}`;
}

/** Sets `key` as the newest of at most `max` entries, dropping the oldest. */
function keep<V>(map: Map<string, V>, key: string, value: V, max: number): void {
  map.delete(key);
  if (map.size >= max) map.delete(map.keys().next().value!);
  map.set(key, value);
}

/** The first `size` bytes of a file: their SHA-256 and their text as chunks, a chunk read, hashed and decoded at a time. */
async function readHashed(handle: FileHandle, size: number): Promise<{ digest: string; source: string[] }> {
  const hash = createHash('sha256');
  const decoder = new StringDecoder('utf8');
  const source: string[] = [];
  const chunk = Buffer.alloc(Math.max(1, Math.min(CHUNK_BYTES, size)));
  for (let at = 0; at < size; ) {
    const { bytesRead } = await handle.read(chunk, 0, Math.min(chunk.length, size - at), at);
    if (bytesRead === 0) break;
    const bytes = chunk.subarray(0, bytesRead);
    hash.update(bytes);
    source.push(decoder.write(bytes));
    at += bytesRead;
  }
  source.push(decoder.end());
  return { digest: hash.digest('hex'), source };
}

/** Characters `from` to `to` (UTF-16 offsets, as V8's positions) of a text kept as chunks. */
function between(source: readonly string[], from: number, to: number): string {
  let text = '';
  let start = 0;
  for (const part of source) {
    const end = start + part.length;
    if (end > from && start < to) text += part.slice(Math.max(0, from - start), to - start);
    start = end;
  }
  return text;
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
