// Whether a captured frame is at its function's entry, read in the script's source (src/loop/function-entry.ts).
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open as openPath } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { EntryReader, atFunctionEntry, opensParameters } from '../../src/loop/function-entry.js';
import { readSmallFileSync, type OpenFile } from '../../src/loop/untrusted-file.js';

/** A temporary directory, removed after the test. */
function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-entry-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A file holding `source`, its URL and SHA-256 (as V8's getScriptHash gives it for the script it ran). */
function script(t: { teardown(fn: () => void): void }, source: string): { url: string; hash: string } {
  const file = join(tempDir(t), 'bundle.js');
  writeFileSync(file, source);
  return { url: pathToFileURL(file).href, hash: createHash('sha256').update(source).digest('hex') };
}

test("a loop as far into its function's line as an async function's `(` is not the entry: the source says `for`", async (t) => {
  const source = 'function spin(n) { for (;;); } async function spun(n) { return n; }';
  const { url, hash } = script(t, source);
  const loop = source.indexOf('for');
  t.is(loop, 'async function spin'.length);
  t.false(await atFunctionEntry(url, { into: loop, position: loop, hash }));
  const start = source.indexOf('async function spun');
  const params = source.indexOf('(n) { return');
  t.true(await atFunctionEntry(url, { into: params - start, position: params, hash }));
});

test("where the file is not the script V8 ran (another hash: tsx's output, a file changed since), the column's word stands", async (t) => {
  const source = 'function spin(n) { for (;;); }';
  const { url } = script(t, source);
  const other = createHash('sha256').update('something else').digest('hex');
  t.true(await atFunctionEntry(url, { into: 19, position: 19, hash: other }));
  t.true(await atFunctionEntry('node:internal/whatever', { into: 19, position: 19, hash: null }));
});

test("a function's start is its entry (an arrow's parameters); a frame the column does not call an entry is not", async (t) => {
  t.true(await atFunctionEntry('file:///nowhere.js', { into: 0, position: 10, hash: null }));
  t.false(await atFunctionEntry('file:///nowhere.js', null));
});

test("heads the function's name does not give are read as heads: spaces, comments, an anonymous `function (`, a quoted or bracketed key", (t) => {
  for (const head of ['function spin ', 'function /* c */ spin', 'function ', 'function', "'str key'", "['computed' + 'Key']", 'async *gen', 'get g', 'constructor']) {
    const source = `${head}(x) { return x; }`;
    t.true(opensParameters(source, head.length, head.length), head);
  }
});

test("a `(` with a body or an expression before it on the line is not the function's parameters, nor is a loop's keyword", (t) => {
  const cases: Array<[string, string]> = [
    ['function f(x) { g(x); }', '(x);'],
    ['x => g(x)', '(x)'],
    ["[Symbol.for('k')](x) { }", '(x)'],
    ['function f(x) { for (;;); }', 'for'],
  ];
  for (const [source, at] of cases) {
    const position = source.indexOf(at);
    t.false(opensParameters(source, position, position), source);
  }
});

/** fs.promises.open, keeping the paths it opened. */
function countingOpen(): { open: OpenFile; opened: string[] } {
  const opened: string[] = [];
  return {
    opened,
    open: (path, flags) => {
      opened.push(path);
      return openPath(path, flags);
    },
  };
}

test('a path that is not a regular file (a FIFO, a device) is refused without being opened: opening one can act', async (t) => {
  // Opening /dev/watchdog arms a watchdog; a master without a terminal takes one it opens as its own.
  const fifo = join(tempDir(t), 'fifo');
  execFileSync('mkfifo', [fifo]);
  const { open, opened } = countingOpen();
  const reader = new EntryReader({ open });
  const hash = createHash('sha256').update('function spin(n) { for (;;); }').digest('hex');
  t.true(await reader.atFunctionEntry(pathToFileURL(fifo).href, { into: 19, position: 19, hash }));
  t.true(await reader.atFunctionEntry('file:///dev/null', { into: 19, position: 19, hash }));
  t.deepEqual(opened, []);
  // source-map.ts's reads: refused too, without waiting for a writer.
  t.is(readSmallFileSync(fifo, 1024), null);
});

/** A clue for the frame at `at` in `source`, on a line that starts the function at `start`. */
function clueAt(source: string, start: string, at: string, hash: string): { into: number; position: number; hash: string } {
  const position = source.indexOf(at);
  return { into: position - source.indexOf(start), position, hash };
}

const SPINS = 'function spin(n) { for (;;); } async function spun(n) { return n; }';

test('a script is read once for every place in it: a blocked worker asks again at each new site', async (t) => {
  const { url, hash } = script(t, SPINS);
  const { open, opened } = countingOpen();
  const reader = new EntryReader({ open });
  t.false(await reader.atFunctionEntry(url, clueAt(SPINS, 'function spin', 'for', hash)));
  t.true(await reader.atFunctionEntry(url, clueAt(SPINS, 'async function spun', '(n) { return', hash)));
  t.is(opened.length, 1);
});

test('a file that is not the script is not read again for another place, until it changes', async (t) => {
  const { url } = script(t, '// tsx keeps the code it runs in memory: this file is not it');
  const hash = createHash('sha256').update(SPINS).digest('hex');
  const { open, opened } = countingOpen();
  const reader = new EntryReader({ open });
  t.true(await reader.atFunctionEntry(url, clueAt(SPINS, 'function spin', 'for', hash)));
  t.true(await reader.atFunctionEntry(url, clueAt(SPINS, 'async function spun', '(n) { return', hash)));
  t.is(opened.length, 1);
  writeFileSync(new URL(url), SPINS);
  t.false(await reader.atFunctionEntry(url, clueAt(SPINS, 'function spin', 'for', hash)));
  t.is(opened.length, 2);
});

test('captures that ask at once share one read of the file', async (t) => {
  const { url, hash } = script(t, SPINS);
  const { open, opened } = countingOpen();
  const reader = new EntryReader({ open });
  const verdicts = await Promise.all([
    reader.atFunctionEntry(url, clueAt(SPINS, 'function spin', 'for', hash)),
    reader.atFunctionEntry(url, clueAt(SPINS, 'async function spun', '(n) { return', hash)),
  ]);
  t.deepEqual(verdicts, [false, true]);
  t.is(opened.length, 1);
});

test('a script read a chunk at a time is read at its V8 positions, across chunks and multi-byte characters', async (t) => {
  // 256 KiB chunks: the padding puts the chunk's end inside `function spin(n) { for`, and its
  // two-byte characters make character offsets differ from byte offsets.
  const source = `//${'é'.repeat(131_065)}\n${SPINS}`;
  const { url, hash } = script(t, source);
  t.true(Buffer.byteLength(source.slice(0, source.indexOf('for'))) > 256 * 1024);
  t.false(await new EntryReader().atFunctionEntry(url, clueAt(source, 'function spin', 'for', hash)));
  t.true(await new EntryReader().atFunctionEntry(url, clueAt(source, 'async function spun', '(n) { return', hash)));
});
