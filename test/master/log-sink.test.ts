// Issue 11: a LogSink whose output stream fails (EPIPE, EBADF) drops it and says so once; one whose reader stalls holds a bounded queue.
import test from 'ava';
import { EventEmitter } from 'node:events';
import { LogSink, MAX_UNWRITTEN_BYTES, RECENT_LINES } from '../../src/master/logs.js';

class FakeStream extends EventEmitter {
  readonly written: string[] = [];
  write(chunk: string): boolean {
    this.written.push(chunk);
    return true;
  }
}

const failure = (code: string): NodeJS.ErrnoException => Object.assign(new Error(`write ${code}`), { code });

test('a failed stdout is dropped, said once on stderr; stderr and the kept lines go on', (t) => {
  const stdout = new FakeStream();
  const stderr = new FakeStream();
  const logs = new LogSink({ format: 'text', output: { stdout, stderr } });
  logs.line({ worker: 1, pid: 10, stream: 'stdout', message: 'before' });
  stdout.emit('error', failure('EPIPE'));
  stdout.emit('error', failure('EPIPE'));
  logs.line({ worker: 1, pid: 10, stream: 'stdout', message: 'after' });
  logs.line({ worker: 1, pid: 10, stream: 'stderr', message: 'to stderr' });
  logs.event('ready', 'ready');
  t.deepEqual(stdout.written, ['[w1] before\n']);
  t.deepEqual(stderr.written, ['clusterd: stdout failed (EPIPE): its output is dropped from now on; the cluster keeps running\n', '[w1] to stderr\n']);
  t.true(logs.lost('stdout'));
  t.false(logs.lost('stderr'));
  t.deepEqual(logs.recent().map((line) => line.message), ['before', 'after', 'to stderr']);
});

test('json: both streams failing (EBADF) drops everything and throws nothing', (t) => {
  const stdout = new FakeStream();
  const stderr = new FakeStream();
  const logs = new LogSink({ format: 'json', output: { stdout, stderr } });
  stderr.emit('error', failure('EBADF'));
  stdout.emit('error', failure('EBADF'));
  const before = stdout.written.length;
  logs.line({ worker: 2, pid: 20, stream: 'stderr', message: 'dropped' });
  logs.event('stopped', 'stopped');
  t.is(stdout.written.length, before);
  t.deepEqual(stderr.written, []);
  t.is(logs.recent().length, 1);
});

/** A stream whose reader has stopped: it queues what it is given, as Node does for a full pipe. */
class StalledStream extends FakeStream {
  writableLength = 0;
  override write(chunk: string): boolean {
    super.write(chunk);
    this.writableLength += Buffer.byteLength(chunk);
    return false;
  }

  /** The reader took everything. */
  drain(): void {
    this.writableLength = 0;
    this.emit('drain');
  }
}

for (const format of ['text', 'json'] as const) {
  test(`${format}: past MAX_UNWRITTEN_BYTES waiting for a stalled reader, lines are counted, not queued; once it caught up, one line says how many it missed`, (t) => {
    const stdout = new StalledStream();
    const stderr = new FakeStream();
    const logs = new LogSink({ format, output: { stdout, stderr } });
    const line = 'y'.repeat(1023);
    const fits = Math.floor(MAX_UNWRITTEN_BYTES / (line.length + 6)) + 1;
    for (let i = 0; i < fits + 500; i++) logs.line({ worker: 1, pid: 10, stream: 'stdout', message: line });
    t.true(stdout.writableLength > MAX_UNWRITTEN_BYTES);
    t.true(stdout.writableLength < MAX_UNWRITTEN_BYTES + 2048, `${stdout.writableLength} bytes queued`);
    const written = stdout.written.length;
    const dropped = fits + 500 - written;
    t.true(dropped >= 499, `${dropped} dropped`);
    // Every line still reaches the ring and its followers (`clusterd logs`).
    t.is(logs.recent().length, RECENT_LINES);

    stdout.drain();
    t.is(stdout.written.length, written + 1);
    const said = stdout.written.at(-1)!;
    const message = `${dropped} lines for stdout dropped: its reader fell 8 MiB behind (the cluster kept serving; \`clusterd logs\` keeps the last ${RECENT_LINES} worker lines)`;
    if (format === 'text') t.is(said, `clusterd: ${message}\n`);
    else t.like(JSON.parse(said), { stream: 'master', level: 'warn', event: 'output-dropped', message, output: 'stdout', dropped });
    // Caught up: written again, and nothing more said.
    logs.line({ worker: 1, pid: 10, stream: 'stdout', message: 'after' });
    t.is(stdout.written.length, written + 2);
    t.true(stdout.written.at(-1)!.includes('after'));
    t.deepEqual(stderr.written, []);
  });
}

test('json: at exit, what a stalled reader missed (lines dropped, bytes still queued) is said on the other stream', (t) => {
  const stdout = new StalledStream();
  const stderr = new FakeStream();
  const logs = new LogSink({ format: 'json', output: { stdout, stderr } });
  const line = 'y'.repeat(1023);
  for (let i = 0; i < MAX_UNWRITTEN_BYTES / 1024 + 100; i++) logs.line({ worker: 1, pid: 10, stream: 'stdout', message: line });
  const dropped = MAX_UNWRITTEN_BYTES / 1024 + 100 - stdout.written.length;
  t.true(dropped > 0);
  logs.unwrittenAtExit('stderr', 0);
  t.deepEqual(stderr.written, [], 'nothing is said of a stream that took everything');
  logs.unwrittenAtExit('stdout', stdout.writableLength);
  t.is(stderr.written.length, 1);
  t.like(JSON.parse(stderr.written[0]!), { stream: 'master', level: 'warn', event: 'output-dropped', output: 'stdout', dropped, unwrittenBytes: stdout.writableLength });
  t.regex((JSON.parse(stderr.written[0]!) as { message: string }).message, /^\d+ lines for stdout dropped and 8\.0 MiB queued for it not written: its reader stopped reading/);
});

test("the master's own lines cannot be forged by what they quote: a client's scale spec gives no worker line and no escape code; a stack keeps its lines", (t) => {
  const stdout = new FakeStream();
  const stderr = new FakeStream();
  const logs = new LogSink({ format: 'text', output: { stdout, stderr } });
  logs.event('operation-requested', 'scale to \n[w1] hacked\x1b[2J asked by the control socket');
  t.deepEqual(stdout.written, ['clusterd: scale to \n    [w1] hacked\\x1b[2J asked by the control socket\n']);
  // A stack keeps its lines.
  logs.event('blocked', 'worker 1 blocked. Stack:\n    at spin (app.js:3:5)\n    at main (app.js:9:1)');
  t.is(stdout.written[1], 'clusterd: worker 1 blocked. Stack:\n    at spin (app.js:3:5)\n    at main (app.js:9:1)\n');
  // JSON has it as it was, escaped by JSON itself.
  const json = new FakeStream();
  new LogSink({ format: 'json', output: { stdout: json, stderr } }).event('operation-requested', 'scale to \n[w1]');
  t.is((JSON.parse(json.written[0]!) as { message: string }).message, 'scale to \n[w1]');
});

test('json: a master line\'s own fields stay what they are whatever its data holds', (t) => {
  const stdout = new FakeStream();
  const logs = new LogSink({ format: 'json', output: { stdout, stderr: new FakeStream() } });
  logs.event('odd', 'the sentence', { stream: 'stdout', message: 'not the sentence', level: 'error', event: 'other', time: 0, extra: 1 });
  logs.event('about', 'about worker 3', { worker: 3, pid: 33 });
  logs.event('restart', 'restart of worker 3', { worker: 3, pid: null });
  const [odd, about, restart] = stdout.written.map((line) => JSON.parse(line) as Record<string, unknown>);
  t.like(odd, { worker: null, pid: process.pid, stream: 'master', level: 'info', event: 'odd', message: 'the sentence', extra: 1 });
  t.not(odd!.time, 0);
  t.like(about, { worker: 3, pid: 33, stream: 'master', event: 'about' });
  t.like(restart, { worker: 3, pid: null });
});
