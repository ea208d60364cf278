// Issue 11: a LogSink whose output stream fails (EPIPE, EBADF) drops it and says so once.
import test from 'ava';
import { EventEmitter } from 'node:events';
import { LogSink } from '../../src/master/logs.js';

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
