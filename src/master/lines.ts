// A worker's output as lines, each at most MAX_LINE_CHARS long. The app is not trusted: readline
// keeps a line until its end comes, so 600 MB without a newline grew the master to a string V8 cannot
// make (RangeError: Invalid string length, the master gone). A longer line is cut into pieces, each
// written as a line of its own: nothing is lost, and the master holds at most one piece of a line
// while it waits for the rest. (What it keeps for `clusterd logs` is clipped shorter: logs.ts.)
import { StringDecoder } from 'node:string_decoder';
import type { Readable } from 'node:stream';

/** The longest line passed on whole (in UTF-16 units): 1 Mi, far beyond any log line a person reads. */
export const MAX_LINE_CHARS = 1024 * 1024;

const BREAK = /\r\n|\n|\r/g;

/**
 * Calls `onLine` for each line of `stream` (ended by \n, \r\n or \r, as readline with crlfDelay:
 * Infinity), cutting lines longer than `maxChars`; resolves once the stream has ended or closed and
 * the last, unfinished line has been given.
 */
export function followLines(stream: Readable, onLine: (line: string) => void, maxChars = MAX_LINE_CHARS): Promise<void> {
  const decoder = new StringDecoder('utf8');
  let pending = '';

  const emit = (line: string): void => {
    for (let start = 0; ; ) {
      if (line.length - start <= maxChars) {
        onLine(start === 0 ? line : line.slice(start));
        return;
      }
      const end = cutAt(line, start + maxChars);
      onLine(line.slice(start, end));
      start = end;
    }
  };

  const feed = (text: string, ended: boolean): void => {
    pending += text;
    let from = 0;
    BREAK.lastIndex = 0;
    for (let match = BREAK.exec(pending); match; match = BREAK.exec(pending)) {
      // A \r last in what has come may be the first half of a \r\n.
      if (!ended && match[0] === '\r' && match.index === pending.length - 1) break;
      emit(pending.slice(from, match.index));
      from = match.index + match[0].length;
    }
    pending = pending.slice(from);
    // No end in sight: give the full pieces now rather than hold them.
    while (pending.length > maxChars + 1) {
      const end = cutAt(pending, maxChars);
      onLine(pending.slice(0, end));
      pending = pending.slice(end);
    }
    if (ended && pending !== '') {
      emit(pending);
      pending = '';
    }
  };

  return new Promise((resolve) => {
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      feed(decoder.end(), true);
      resolve();
    };
    stream.on('data', (chunk: Buffer | string) => feed(typeof chunk === 'string' ? chunk : decoder.write(chunk), false));
    stream.once('end', finish);
    stream.once('close', finish);
    stream.once('error', finish);
  });
}

/** Where to cut `text` near `at` without splitting a surrogate pair. */
function cutAt(text: string, at: number): number {
  const code = text.charCodeAt(at - 1);
  return code >= 0xd800 && code <= 0xdbff ? at - 1 : at;
}
