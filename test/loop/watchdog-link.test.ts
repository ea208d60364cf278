// The watchdog's pure parts, without processes: the master's link over a fake pipe, the line splitter,
// formatStack, and startWatchdog's option checks (which throw before any thread starts).
import test from 'ava';
import { once } from 'node:events';
import { closeSync, openSync } from 'node:fs';
import { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { lineSplitter, startWatchdog, type StackFrame, type WatchdogOptions } from '../../src/loop/watchdog.js';
import { WatchdogLink, formatStack, type BlockedReport } from '../../src/master/watchdog-link.js';

/** The master's end of a pipe: what the test pushes is read by the link; what the link writes is kept. */
class FakePipe extends Duplex {
  readonly written: string[] = [];

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.written.push(chunk.toString());
    callback();
  }

  /** The ids of the stack requests written so far. */
  requestIds(): number[] {
    return this.written.join('').split('\n').filter(Boolean).map((line) => (JSON.parse(line) as { id: number }).id);
  }
}

function setup(): { pipe: FakePipe; link: WatchdogLink; warnings: string[]; blocked: BlockedReport[] } {
  const pipe = new FakePipe();
  const link = new WatchdogLink(pipe);
  const warnings: string[] = [];
  const blocked: BlockedReport[] = [];
  link.on('warning', (text: string) => warnings.push(text));
  link.on('blocked', (report: BlockedReport) => blocked.push(report));
  return { pipe, link, warnings, blocked };
}

const frame: StackFrame = { functionName: 'spinForever', url: 'file:///app/é.js', line: 9, column: 3 };

test('a report split across chunks, even inside a multi-byte character, arrives whole', async (t) => {
  const { pipe, link, blocked, warnings } = setup();
  const bytes = Buffer.from(`${JSON.stringify({ type: 'blocked', blockedMs: 412, stack: [frame] })}\n`);
  const split = bytes.indexOf(Buffer.from('é')) + 1;
  pipe.push(bytes.subarray(0, 7));
  pipe.push(bytes.subarray(7, split));
  pipe.push(bytes.subarray(split));
  await once(link, 'blocked');
  t.deepEqual(blocked, [{ blockedMs: 412, stack: [frame] }]);
  t.deepEqual(warnings, []);
});

test('garbage lines are skipped with a warning, and the reports around them still arrive', async (t) => {
  const { pipe, link, blocked, warnings } = setup();
  const report = JSON.stringify({ type: 'blocked', blockedMs: 1, stack: [] });
  pipe.push(['not json', '', '[1,2]', '{"type":"blocked","blockedMs":"x","stack":[]}',
    '{"type":"blocked","blockedMs":5,"stack":[{"functionName":1}]}', '{"type":"mystery"}', report,
    `${report}${report}`, '{"type"'].join('\n'));
  pipe.push(':"ready","pid":7,"thresholdMs":300}\n');
  const [ready] = await once(link, 'ready');
  t.deepEqual(ready, { pid: 7, thresholdMs: 300 });
  t.deepEqual(blocked, [{ blockedMs: 1, stack: [] }]);
  t.is(warnings.length, 6, warnings.join('\n'));
  // Two reports glued together are one garbage line, dropped as a whole.
  t.true(warnings.every((text) => text.startsWith('watchdog: unexpected line')));
});

test('requestStack writes a request with a fresh id and resolves with the matching reply', async (t) => {
  const { pipe, link } = setup();
  const first = link.requestStack(1000);
  const second = link.requestStack(1000);
  t.deepEqual(pipe.requestIds(), [1, 2]);
  pipe.push(`${JSON.stringify({ type: 'stack', id: 2, state: 'idle', stack: [] })}\n`);
  pipe.push(`${JSON.stringify({ type: 'stack', id: 1, state: 'blocked', stack: [frame], blockedMs: 900 })}\n`);
  t.deepEqual(await second, { state: 'idle', stack: [] });
  t.deepEqual(await first, { state: 'blocked', stack: [frame], blockedMs: 900 });
});

test('requestStack rejects on timeout, and a late reply is dropped', async (t) => {
  const { pipe, link, warnings } = setup();
  await t.throwsAsync(link.requestStack(20), { code: 'ERR_CLUSTERD_WATCHDOG_TIMEOUT' });
  pipe.push(`${JSON.stringify({ type: 'stack', id: 1, state: 'idle', stack: [] })}\n`);
  // A later request still works, and the late reply raised no warning.
  const next = link.requestStack(1000);
  pipe.push(`${JSON.stringify({ type: 'stack', id: 2, state: 'busy', stack: [frame] })}\n`);
  t.deepEqual(await next, { state: 'busy', stack: [frame] });
  t.deepEqual(warnings, []);
});

test('an error the thread reports for a request rejects it; one for no request is a warning', async (t) => {
  const { pipe, link, warnings } = setup();
  const request = link.requestStack(1000);
  pipe.push(`${JSON.stringify({ type: 'error', id: 1, message: 'watchdog capture failed: boom' })}\n`);
  pipe.push(`${JSON.stringify({ type: 'error', message: 'watchdog thread: oops' })}\n`);
  await t.throwsAsync(request, { code: 'ERR_CLUSTERD_WATCHDOG', message: 'watchdog capture failed: boom' });
  t.deepEqual(warnings, ['watchdog thread: oops']);
});

test('when the pipe closes, pending requests reject, close is emitted once, and later requests reject', async (t) => {
  const { pipe, link } = setup();
  let closes = 0;
  link.on('close', () => closes++);
  const pending = link.requestStack(5000);
  pipe.push(null);
  pipe.destroy();
  await t.throwsAsync(pending, { code: 'ERR_CLUSTERD_WATCHDOG_CLOSED' });
  link.close();
  t.is(closes, 1);
  t.true(link.closed);
  await t.throwsAsync(link.requestStack(5000), { code: 'ERR_CLUSTERD_WATCHDOG_CLOSED' });
});

test('lineSplitter drops an over-long line whole and goes on with the next', (t) => {
  const lines: string[] = [];
  let overflows = 0;
  const feed = lineSplitter((line) => lines.push(line), { maxLength: 8, onOverflow: () => overflows++ });
  feed('short\n0123');
  feed('456789');
  feed('abc\nok');
  feed('\n123456789\n\n');
  t.deepEqual(lines, ['short', 'ok', '']);
  t.is(overflows, 2);
});

test('formatStack prints frames as Node prints a stack trace', (t) => {
  t.deepEqual(formatStack([
    frame,
    { functionName: '', url: 'file:///app/server.js', line: 20, column: 7 },
    { functionName: 'listOnTimeout', url: 'node:internal/timers', line: 581, column: 17 },
    { functionName: 'evaluated', url: '', line: 1, column: 1 },
  ]), [
    '    at spinForever (file:///app/é.js:9:3)',
    '    at file:///app/server.js:20:7',
    '    at listOnTimeout (node:internal/timers:581:17)',
    '    at evaluated (<anonymous>:1:1)',
  ]);
});

const badOption = test.macro({
  exec(t, options: WatchdogOptions, message: RegExp) {
    t.throws(() => startWatchdog(options), { instanceOf: RangeError, message });
  },
  title: (_title, options) => `startWatchdog refuses ${JSON.stringify(options)}`,
});
test(badOption, { thresholdMs: -1 }, /`thresholdMs` option to be 0 \(off\) or an integer from 10 to \d+, got `-1`/);
test(badOption, { thresholdMs: 5 }, /`thresholdMs`.*got `5`/);
test(badOption, { thresholdMs: 1.5 }, /`thresholdMs`.*got `1.5`/);
test(badOption, { thresholdMs: 100, heartbeatMs: 100 }, /`heartbeatMs` option to be an integer from 1 to `thresholdMs` - 1 \(99\), got `100`/);
test(badOption, { thresholdMs: 100, captureTimeoutMs: 0 }, /`captureTimeoutMs`.*got `0`/);
test(badOption, { thresholdMs: 100, fd: 1000 }, /`fd` option to be an open pipe or socket .*got `1000`/);

test('startWatchdog refuses an fd that is a regular file', (t) => {
  const fd = openSync(fileURLToPath(import.meta.url), 'r');
  t.teardown(() => closeSync(fd));
  t.throws(() => startWatchdog({ thresholdMs: 100, fd }), { instanceOf: RangeError, message: /`fd` option/ });
});
