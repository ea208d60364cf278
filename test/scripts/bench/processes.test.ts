// The benchmark's reading of the machine's TCP counters: what explains a 1 s tail on new connections.
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
