// The benchmark's process handling: the machine's TCP counters (what explains a 1 s tail on new
// connections), and how an interrupted run stops what it started.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { parseTcpCounters, tcpCounters } from '../../../scripts/bench/processes.js';
import { tcpNote } from '../../../scripts/bench/runner.js';

const NETSTAT = [
  'TcpExt: SyncookiesSent SyncookiesRecv ListenOverflows ListenDrops TCPSynRetrans TWRecycled',
  'TcpExt: 0 0 3 5 12 900',
  'IpExt: InNoRoutes InTruncatedPkts',
  'IpExt: 0 0',
].join('\n');

test('TCP counters are read by name from /proc/net/netstat', (t) => {
  t.deepEqual(parseTcpCounters(NETSTAT), { synRetrans: 12, listenOverflows: 3, listenDrops: 5 });
  t.is(parseTcpCounters('IpExt: A\nIpExt: 1'), undefined, 'no TcpExt section');
  t.is(parseTcpCounters('TcpExt: ListenOverflows ListenDrops\nTcpExt: 1 2'), undefined, 'a counter missing');
  t.is(parseTcpCounters('TcpExt: ListenOverflows ListenDrops TCPSynRetrans\nTcpExt: 1 2 x'), undefined, 'a value that is not a number');
  if (process.platform === 'linux') t.truthy(tcpCounters(), 'this machine has them');
});

test('a measurement names its SYN retransmits, and says nothing without any', (t) => {
  t.is(tcpNote(undefined), '');
  t.is(tcpNote({ synRetrans: 0, listenOverflows: 0, listenDrops: 0 }), '');
  t.is(tcpNote({ synRetrans: 1, listenOverflows: 0, listenDrops: 0 }), ', 1 SYN retransmit (0 listen overflows, 0 listen drops)');
  t.is(tcpNote({ synRetrans: 117, listenOverflows: 40, listenDrops: 41 }), ', 117 SYN retransmits (40 listen overflows, 41 listen drops)');
});

test('Ctrl-C stops what the benchmark started with SIGTERM first, then runs the clean-up', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-interrupt-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const marker = path.join(dir, 'child');
  const stopped = path.join(dir, 'stopped');
  const runner = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('fixtures/interrupted-runner.ts', import.meta.url)), marker, stopped], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => runner.kill('SIGKILL'));
  let output = '';
  runner.stdout.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    runner.stdout.on('data', (chunk: string) => {
      output += chunk;
      if (output.includes('ready')) resolve();
    });
    runner.once('exit', () => reject(new Error(`the runner exited before it was ready: ${output}`)));
  });
  const exited = once(runner, 'exit');
  runner.kill('SIGINT');
  const [code] = (await exited) as [number | null];
  t.is(code, 130);
  // Before, the child's group was SIGKILLed at once: a clusterd master left its control socket behind.
  t.is(fs.readFileSync(marker, 'utf8'), 'SIGTERM');
  t.is(fs.readFileSync(stopped, 'utf8'), 'stopped');
});
