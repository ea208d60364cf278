// A worker's output as lines (src/master/lines.ts): what readline gave, with lines bounded.
import test from 'ava';
import { PassThrough } from 'node:stream';
import { followLines, MAX_LINE_CHARS } from '../../src/master/lines.js';

/** The lines `chunks` make, written one after another, with lines cut past `maxChars`. */
async function linesOf(chunks: (string | Buffer)[], maxChars?: number): Promise<string[]> {
  const stream = new PassThrough();
  const lines: string[] = [];
  const done = followLines(stream, (line) => lines.push(line), maxChars);
  for (const chunk of chunks) stream.write(chunk);
  stream.end();
  await done;
  return lines;
}

test('lines end at \\n, \\r\\n or \\r, across chunks; the last unfinished one is given at the end', async (t) => {
  t.deepEqual(await linesOf(['a\nb\r', '\nc\rd', '\n\ne']), ['a', 'b', 'c', 'd', '', 'e']);
  t.deepEqual(await linesOf(['one\n']), ['one']);
  t.deepEqual(await linesOf([]), []);
});

test('a character split across chunks is put back together', async (t) => {
  const bytes = Buffer.from('é€😀\n');
  t.deepEqual(await linesOf([bytes.subarray(0, 1), bytes.subarray(1, 4), bytes.subarray(4, 8), bytes.subarray(8)]), ['é€😀']);
});

test('a line longer than the limit is given in pieces, nothing lost, even before its end comes', async (t) => {
  const stream = new PassThrough();
  const lines: string[] = [];
  const done = followLines(stream, (line) => lines.push(line), 4);
  stream.write('abcdefghij');
  // Pieces come out while the line is still open (the master holds at most a piece of it).
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(lines, ['abcd', 'efgh']);
  stream.end('kl\nxy\n');
  await done;
  t.deepEqual(lines, ['abcd', 'efgh', 'ijkl', 'xy']);
  t.deepEqual(await linesOf(['abcdefghi\n'], 4), ['abcd', 'efgh', 'i']);
  // A line exactly as long as the limit, then \r\n split across chunks: one line, no empty one.
  t.deepEqual(await linesOf(['abcd\r', '\nz\n'], 4), ['abcd', 'z']);
});

test('a cut never splits a surrogate pair', async (t) => {
  const lines = await linesOf(['ab😀cd\n'], 3);
  t.deepEqual(lines, ['ab', '😀c', 'd']);
  t.is(lines.join(''), 'ab😀cd');
});

test('a huge line without a newline is bounded pieces', async (t) => {
  const piece = 'y'.repeat(256 * 1024);
  const lines = await linesOf(Array.from({ length: 20 }, () => piece));
  t.is(lines.join('').length, 20 * piece.length);
  t.is(lines.length, 5);
  t.true(lines.every((line) => line.length <= MAX_LINE_CHARS));
});
