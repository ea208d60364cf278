// The line a failed boot is explained by (exit-report.ts lastErrorLine, errors.ts oneLine).
import test from 'ava';
import { EXIT_OUTPUT_MS, describeExit, lastErrorLine, nodeRefusedFlags, writingOutput } from '../../src/master/exit-report.js';
import { describeListenFailure } from '../../src/master/listen-failure.js';
import { OutputTail } from '../../src/master/logs.js';
import type { WorkerExit, WorkerProcess } from '../../src/master/worker.js';
import { oneLine } from '../../src/errors.js';

test("the error line of a stack trace; an error that only announces the next line brings it along (esbuild's)", (t) => {
  t.is(lastErrorLine(['file:///app.js:1', 'throw new Error("boom")', '', 'Error: boom', '    at file:///app.js:1:7', '', 'Node.js v20.20.2']), 'Error: boom');
  const esbuild = ['Error: Transform failed with 1 error:', '/srv/app.ts:1:18: ERROR: Unexpected ";"', '    at failureErrorWithLog (esbuild/lib/main.js:1:1)'];
  t.is(lastErrorLine(esbuild), 'Error: Transform failed with 1 error: /srv/app.ts:1:18: ERROR: Unexpected ";"');
  // A colon at the end followed by a stack frame is no announcement.
  t.is(lastErrorLine(['TypeError: x is not a function:', '    at main (app.js:2:3)']), 'TypeError: x is not a function:');
  t.is(lastErrorLine(['just a line']), 'just a line');
  t.is(lastErrorLine(['what went wrong', '', 'Node.js v20.20.2']), 'what went wrong');
  t.is(lastErrorLine([]), '');
  t.is(oneLine(new Error('Transform failed with 1 error:\nclusterd.config.ts:1:28: ERROR: Unexpected "}"')), 'Transform failed with 1 error: clusterd.config.ts:1:28: ERROR: Unexpected "}"');
  t.is(oneLine(new Error('first\nsecond')), 'first');
});

test("the last report names it: a line the app wrote after an error's stack is its last word; the error's properties and Node's trailer are not", (t) => {
  const handled = ['Error: user 42 not found (handled, 404)', '    at Server.<anonymous> (/srv/app.js:4:50)', '    at Server.emit (node:events:518:28)'];
  t.is(lastErrorLine([...handled, 'fatal: lost connection to db, giving up']), 'fatal: lost connection to db, giving up');
  t.is(lastErrorLine([...handled, 'TypeError: boom', '    at Timeout._onTimeout (/srv/app.js:9:9)', '', 'Node.js v20.20.2']), 'TypeError: boom');
  // A message of several lines, then its stack and properties.
  const missing = ["Error: Cannot find module 'pg'", 'Require stack:', '- /srv/app.js', '    at Module._resolveFilename (node:internal/modules/cjs/loader:1225:15) {', "  code: 'MODULE_NOT_FOUND',", "  requireStack: [ '/srv/app.js' ]", '}', '', 'Node.js v20.20.2'];
  t.is(lastErrorLine([...handled, ...missing]), "Error: Cannot find module 'pg'");
  // A thrown string: Node prints it, then a hint.
  t.is(lastErrorLine(['/srv/app.js:1', "throw 'no config'", '^', 'no config', '(Use `node --trace-uncaught ...` to show where the exception was thrown)', '', 'Node.js v20.20.2']), 'no config');
  // The master's note says why it killed the worker, whatever came after.
  t.is(lastErrorLine(['Error: old', '(clusterd: not ready after 3000 ms; see --listen-timeout)', 'still starting']), '(clusterd: not ready after 3000 ms; see --listen-timeout)');
});

test("describeExit quotes a serving worker's last seconds of stderr, a failed boot's whole boot, a stop's stop, and nothing the app wrote for a SIGKILL", (t) => {
  const exitedAt = 1_000_000;
  const tail = new OutputTail();
  tail.push('Error: user 42 not found (handled, 404)', exitedAt - 60_000);
  tail.push('    at Server.<anonymous> (/srv/app.js:4:50)', exitedAt - 60_000);
  const worker = { stderrTail: tail, exitedAt, stoppingAt: null } as unknown as WorkerProcess;
  const exit = (from: WorkerExit['from'], code: number | null, signal: NodeJS.Signals | null = null): WorkerExit => ({ code, signal, from, killed: false });
  t.is(describeExit(exit('ready', 3), worker), 'exited with code 3');
  t.is(describeExit(exit('starting', 3), worker), 'exited with code 3 before it was ready: Error: user 42 not found (handled, 404)');
  t.is(describeExit(exit('stopping', 3), { ...worker, stoppingAt: exitedAt - 90_000 } as unknown as WorkerProcess), 'exited with code 3 while stopping: Error: user 42 not found (handled, 404)');
  t.is(describeExit(exit('stopping', 3), { ...worker, stoppingAt: exitedAt - 30_000 } as unknown as WorkerProcess), 'exited with code 3 while stopping');
  tail.push('fatal: giving up', exitedAt - EXIT_OUTPUT_MS);
  t.is(describeExit(exit('ready', 3), worker), 'exited with code 3: fatal: giving up');
  t.is(describeExit(exit('ready', null, 'SIGKILL'), worker), 'was killed by SIGKILL');
  t.is(describeExit(exit('starting', null, 'SIGKILL'), worker), 'was killed by SIGKILL before it was ready');
  tail.push('(clusterd: not ready after 3000 ms; see --listen-timeout)', exitedAt);
  t.is(describeExit(exit('starting', null, 'SIGKILL'), worker), 'was killed by SIGKILL before it was ready: (clusterd: not ready after 3000 ms; see --listen-timeout)');
  // The lines read after the process ended are its last.
  const late = new OutputTail();
  late.push('RangeError: Maximum call stack size exceeded', exitedAt + 5);
  t.is(describeExit(exit('ready', 7), { ...worker, stderrTail: late } as unknown as WorkerProcess), 'exited with code 7: RangeError: Maximum call stack size exceeded');
});

test('node refusing its flags: exit code 9 and its own line, nothing else', (t) => {
  const exit = (code: number) => ({ code, signal: null, from: 'starting' as const, killed: false });
  t.is(nodeRefusedFlags(exit(9), ['/usr/bin/node: bad option: --no-such-flag']), 'bad option: --no-such-flag');
  t.is(nodeRefusedFlags(exit(9), ['node: --require requires an argument']), '--require requires an argument');
  // An app that exits 9 itself, or says the same words with another code, is an app's failure.
  t.is(nodeRefusedFlags(exit(9), ['Error: config missing']), null);
  t.is(nodeRefusedFlags(exit(1), ['node: bad option: --x']), null);
});

test('writingOutput: a loop blocked in a write to its own output (stdout and stderr block, so that no line is lost) says so', (t) => {
  const frame = (functionName: string, url: string) => ({ functionName, url, line: 1, column: 1 });
  // As the watchdog caught a worker logging 200 MB in one loop while the master read 6-8 MB/s.
  const writing = [frame('afterWriteDispatched', 'node:internal/stream_base_commons'), frame('writeGeneric', 'node:internal/stream_base_commons'), frame('Socket._writeGeneric', 'node:net'), frame('Socket._write', 'node:net'), frame('handler', 'file:///srv/app.js')];
  t.true(writingOutput(writing));
  t.false(writingOutput([frame('spin', 'file:///srv/app.js'), frame('emit', 'node:events')]));
  t.false(writingOutput([]));
});

test("a port in use by the master's own listener says so; another address, port or error does not", (t) => {
  const failure = (address: string | null, port: number, code = 'EADDRINUSE') => ({ query: { key: '', address, port, addressType: 4, flags: 0 }, code, errno: 0 });
  const own = [{ flag: '--metrics', host: '0.0.0.0', port: 9100 }, { flag: '--health', host: '127.0.0.1', port: 9200 }, { flag: '--dashboard', path: '/run/dash.sock' }];
  t.is(describeListenFailure(failure('127.0.0.1', 9200), own), "cannot listen on port 9200 (127.0.0.1:9200): address already in use (EADDRINUSE): it is this cluster's own --health address");
  t.is(describeListenFailure(failure(null, 9200), own), "cannot listen on port 9200 (*:9200): address already in use (EADDRINUSE): it is this cluster's own --health address");
  t.is(describeListenFailure(failure('10.0.0.5', 9100), own), "cannot listen on port 9100 (10.0.0.5:9100): address already in use (EADDRINUSE): it is this cluster's own --metrics address");
  t.is(describeListenFailure(failure('10.0.0.5', 9200), own), 'cannot listen on port 9200 (10.0.0.5:9200): address already in use (EADDRINUSE)');
  t.is(describeListenFailure(failure('127.0.0.1', 9300), own), 'cannot listen on port 9300 (127.0.0.1:9300): address already in use (EADDRINUSE)');
  t.is(describeListenFailure(failure('127.0.0.1', 9200, 'EACCES'), own), 'cannot listen on port 9200 (127.0.0.1:9200): permission denied (EACCES)');
  const socket = { query: { key: '', address: '/run/dash.sock', port: -1, addressType: -1, flags: 0 }, code: 'EADDRINUSE', errno: 0 };
  t.is(describeListenFailure(socket, own), "cannot listen on unix socket /run/dash.sock: address already in use (EADDRINUSE): it is this cluster's own --dashboard address");
});

test('a port in use by the socket from systemd says so, and to listen on its address', (t) => {
  const failure = (address: string | null, port: number, code = 'EADDRINUSE') => ({ query: { key: '', address, port, addressType: 4, flags: 0 }, code, errno: 0 });
  const inherited = [{ address: '::', family: 'IPv6', port: 3209 }, { address: '127.0.0.1', family: 'IPv4', port: 3300 }];
  t.is(
    describeListenFailure(failure('127.0.0.1', 3209), [], inherited),
    'cannot listen on port 3209 (127.0.0.1:3209): address already in use (EADDRINUSE): it is the socket from systemd ([::]:3209), which the master holds; listen on that same address (or on none: host omitted)',
  );
  t.is(
    describeListenFailure(failure('0.0.0.0', 3300), [], inherited),
    'cannot listen on port 3300 (0.0.0.0:3300): address already in use (EADDRINUSE): it is the socket from systemd (127.0.0.1:3300), which the master holds; listen on that same address',
  );
  t.is(describeListenFailure(failure('10.0.0.5', 3300), [], inherited), 'cannot listen on port 3300 (10.0.0.5:3300): address already in use (EADDRINUSE)');
  t.is(describeListenFailure(failure('127.0.0.1', 3209, 'EACCES'), [], inherited), 'cannot listen on port 3209 (127.0.0.1:3209): permission denied (EACCES)');
  // None adopted (no socket activation): no hint.
  t.is(describeListenFailure(failure('127.0.0.1', 3209)), 'cannot listen on port 3209 (127.0.0.1:3209): address already in use (EADDRINUSE)');
  // exclusive: true binds a socket of the worker's own at any address: leaving it out comes first.
  const exclusive = (address: string | null, port: number) => ({ ...failure(address, port), exclusive: { holder: null } });
  t.is(
    describeListenFailure(exclusive(null, 3209), [], inherited),
    'cannot listen on port 3209 (*:3209): address already in use (EADDRINUSE): it is the socket from systemd ([::]:3209), which the master holds; the app listens with exclusive: true, which binds a socket of its own: leave exclusive out to take it',
  );
  // A wildcard takes systemd's wildcard socket, as the master hands it out: leaving exclusive out is enough.
  t.is(
    describeListenFailure(exclusive('0.0.0.0', 3209), [], inherited),
    'cannot listen on port 3209 (0.0.0.0:3209): address already in use (EADDRINUSE): it is the socket from systemd ([::]:3209), which the master holds; the app listens with exclusive: true, which binds a socket of its own: leave exclusive out to take it',
  );
  t.is(
    describeListenFailure(exclusive('127.0.0.1', 3300), [], inherited),
    'cannot listen on port 3300 (127.0.0.1:3300): address already in use (EADDRINUSE): it is the socket from systemd (127.0.0.1:3300), which the master holds; the app listens with exclusive: true, which binds a socket of its own: leave exclusive out to take it',
  );
  t.is(
    describeListenFailure(exclusive('0.0.0.0', 3300), [], inherited),
    'cannot listen on port 3300 (0.0.0.0:3300): address already in use (EADDRINUSE): it is the socket from systemd (127.0.0.1:3300), which the master holds; the app listens with exclusive: true, which binds a socket of its own: leave exclusive out, and listen on that same address',
  );
});
