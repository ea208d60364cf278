// systemd's Type=notify against a fake NOTIFY_SOCKET: a unix datagram listener (python3, since Node
// has no unix datagram sockets) that prints what it receives. READY=1 once every worker is ready,
// RELOADING=1 with MONOTONIC_USEC then READY=1 around a reload, STATUS= lines, WATCHDOG=1 at half
// of WATCHDOG_USEC, STOPPING=1 on the stop (with --shutdown-delay, at the SIGTERM that starts it).
import test from 'ava';
import { execa } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { LogSink } from '../../src/master/logs.js';
import { SystemdNotifier } from '../../src/master/sd-notify.js';
import { nativeHelper } from '../../src/system/native.js';
import { ExitCode } from '../../src/exit-codes.js';
import { fixture, killOnTeardown, startCluster, waitFor } from '../helpers/cluster.js';
import { control } from '../helpers/control.js';

const LISTENER = `
import socket, sys, json
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind('\\0' + path[1:] if path.startswith('@') else path)
print('listening', flush=True)
while True:
    data = s.recv(65536)
    print(json.dumps(data.decode()), flush=True)
`;

/** A fake NOTIFY_SOCKET; `messages` fills as datagrams arrive. */
async function fakeNotifySocket(t: { teardown(fn: () => void): void }, path: string): Promise<{ messages: string[] }> {
  const listener = execa('python3', ['-c', LISTENER, path], { reject: false, buffer: false });
  t.teardown(() => listener.kill('SIGKILL'));
  const messages: string[] = [];
  const lines = createInterface({ input: listener.stdout! });
  await new Promise<void>((resolve) =>
    lines.on('line', (line) => {
      if (line === 'listening') resolve();
      else messages.push(JSON.parse(line) as string);
    }),
  );
  return { messages };
}

test('the notifier: watchdog only for this pid, one log line when sending fails', async (t) => {
  const sent: string[] = [];
  const logs = new LogSink({ format: 'json', output: { stdout: { write: () => {} }, stderr: { write: () => {} } } });
  const events: string[] = [];
  logs.event = (event: string) => void events.push(event);
  const send = (message: string) => Promise.resolve(message.startsWith('STATUS=broken') ? 'sendto: errno 111' : (sent.push(message), null));
  t.is(SystemdNotifier.fromEnv({ env: {}, logs, send }), null, 'no NOTIFY_SOCKET: no notifier');
  const other = SystemdNotifier.fromEnv({ env: { NOTIFY_SOCKET: '/x', WATCHDOG_USEC: '20000', WATCHDOG_PID: '1' }, logs, pid: 2, send })!;
  const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: '/x', WATCHDOG_USEC: '20000', PATH: '/bin' };
  const mine = SystemdNotifier.fromEnv({ env, logs, pid: 2, send })!;
  // Read, then taken out of the environment the workers inherit: the master speaks for the unit.
  t.deepEqual(env, { PATH: '/bin' });
  t.teardown(() => {
    other.stopWatchdog();
    mine.stopWatchdog();
  });
  await waitFor(() => sent.filter((message) => message === 'WATCHDOG=1').length >= 3, { what: 'watchdog pings every 10 ms' });
  other.stopWatchdog();
  mine.stopWatchdog();
  mine.status('broken');
  mine.status('broken again');
  await waitFor(() => events.length > 0);
  t.deepEqual(events, ['notify-failed']);
  const count = sent.length;
  mine.status('broken again');
  t.is(sent.length, count, 'an unchanged STATUS is not sent again');
});

test('Type=notify: READY=1 with STATUS once ready, RELOADING=1 + MONOTONIC_USEC then READY=1 on a reload, WATCHDOG=1, STOPPING=1', async (t) => {
  t.truthy(nativeHelper()?.notify, 'the native helper sends the datagrams (npm install builds it)');
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-notify-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'notify.sock');
  const { messages } = await fakeNotifySocket(t, path);
  const cluster = await startCluster(fixture('hello.js'), { instances: 2, env: { NOTIFY_SOCKET: path, WATCHDOG_USEC: '400000' } });
  t.teardown(() => cluster.stop('SIGKILL'));
  await waitFor(() => messages.some((message) => message.startsWith('READY=1')), { what: 'READY=1' });
  t.is(messages.find((message) => message.startsWith('READY=1')), 'READY=1\nSTATUS=2/2 workers ready, generation 1');
  await waitFor(() => messages.filter((message) => message === 'WATCHDOG=1').length >= 2, { what: 'WATCHDOG=1 every 200 ms' });

  cluster.process.kill('SIGHUP');
  await waitFor(() => messages.some((message) => message === 'READY=1\nSTATUS=2/2 workers ready, generation 2'), { what: 'READY=1 after the reload' });
  const reloading = messages.findIndex((message) => message.startsWith('RELOADING=1'));
  t.regex(messages[reloading]!, /^RELOADING=1\nMONOTONIC_USEC=\d+\nSTATUS=reloading$/);
  const usec = BigInt(/MONOTONIC_USEC=(\d+)/.exec(messages[reloading]!)![1]!);
  t.true(usec <= process.hrtime.bigint() / 1000n, 'CLOCK_MONOTONIC, in microseconds');
  t.true(reloading < messages.findIndex((message) => message.endsWith('generation 2')));

  cluster.process.kill('SIGTERM');
  t.is(await cluster.exited, 0);
  await waitFor(() => messages.includes('STOPPING=1\nSTATUS=stopping'), { what: 'STOPPING=1' });
});

test('Type=notify with --shutdown-delay: STOPPING=1 at the SIGTERM, not at the end of the delay; a reload then is refused and no READY=1 follows', async (t) => {
  t.truthy(nativeHelper()?.notify, 'the native helper sends the datagrams (npm install builds it)');
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-notify-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'notify.sock');
  const { messages } = await fakeNotifySocket(t, path);
  const ctl = control(t);
  const cluster = await startCluster(fixture('hello.js'), { instances: 1, flags: ['--name', 'notify-delay', '--shutdown-delay', '10m'], env: { ...ctl.env, NOTIFY_SOCKET: path } });
  killOnTeardown(t, cluster.process);
  await waitFor(() => messages.some((message) => message.startsWith('READY=1')), { what: 'READY=1' });

  process.kill(cluster.masterPid, 'SIGTERM');
  await waitFor(() => messages.includes('STOPPING=1\nSTATUS=stopping'), { what: 'STOPPING=1 during the delay' });
  t.false(cluster.lines.some((line) => line.event === 'shutdown-delay'), 'the delay still runs');
  const reload = await ctl.run(['reload', 'notify-delay']);
  t.is(reload.exitCode, ExitCode.NOT_FOUND, String(reload.stderr));
  t.regex(String(reload.stderr), /the cluster is stopping/);

  process.kill(cluster.masterPid, 'SIGTERM');
  t.is(await cluster.exited, ExitCode.OK);
  const after = messages.slice(messages.indexOf('STOPPING=1\nSTATUS=stopping'));
  t.deepEqual(after.filter((message) => !message.startsWith('WATCHDOG=1')), ['STOPPING=1\nSTATUS=stopping'], 'STOPPING=1 once, and nothing says ready or reloading after it');
});

test('the notifier: once STOPPING=1 is sent, READY=1, RELOADING=1 and STATUS= lines are not (a reload the stop ended), nor STOPPING=1 again', async (t) => {
  const sent: string[] = [];
  const logs = new LogSink({ format: 'json', output: { stdout: { write: () => {} }, stderr: { write: () => {} } } });
  const notifier = SystemdNotifier.fromEnv({ env: { NOTIFY_SOCKET: '/x' }, logs, send: (message) => (sent.push(message), Promise.resolve(null)) })!;
  notifier.reloading();
  notifier.stopping();
  notifier.ready('1/1 workers ready, generation 2');
  notifier.reloading();
  notifier.status('0/1 workers ready, generation 2');
  notifier.stopping();
  t.deepEqual(sent.map((message) => message.split('\n')[0]), ['RELOADING=1', 'STOPPING=1']);
});

test('Type=notify: an abstract NOTIFY_SOCKET (@name) works too', async (t) => {
  const name = `@clusterd-test-${process.pid}-${Date.now()}`;
  const { messages } = await fakeNotifySocket(t, name);
  const cluster = await startCluster(fixture('hello.js'), { instances: 1, env: { NOTIFY_SOCKET: name } });
  t.teardown(() => cluster.stop('SIGKILL'));
  await waitFor(() => messages.some((message) => message.startsWith('READY=1')), { what: 'READY=1' });
  t.pass();
});

test('a notification that cannot be sent names its errno, as clusterd\'s other lines do (ENOENT, not errno 2)', async (t) => {
  t.truthy(nativeHelper()?.notify, 'the native helper sends the datagrams (npm install builds it)');
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-notify-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'nobody-listens.sock');
  const cluster = await startCluster(fixture('hello.js'), { instances: 1, env: { NOTIFY_SOCKET: path, WATCHDOG_USEC: '500000' } });
  t.teardown(() => cluster.stop('SIGKILL'));
  const failed = await cluster.waitForLine((line) => line.event === 'notify-failed', 10_000);
  t.is(failed.message, `systemd notification failed (sendto ${path}: ENOENT); the cluster keeps running`);
  t.is(failed.error, `sendto ${path}: ENOENT`);
  cluster.process.kill('SIGTERM');
  t.is(await cluster.exited, 0);
});

test.serial('a watchdog period past what a timer can wait still gets its pings, at the longest a timer can wait', (t) => {
  const logs = new LogSink({ format: 'json', output: { stdout: { write: () => {} }, stderr: { write: () => {} } } });
  const delays: number[] = [];
  const real = globalThis.setInterval;
  globalThis.setInterval = ((callback: () => void, ms: number) => {
    delays.push(ms);
    return real(callback, 2 ** 31 - 1);
  }) as typeof setInterval;
  try {
    // WatchdogSec=60d: half is 30 days, past Node's 2^31-1 ms (about 24.8 days).
    const notifier = SystemdNotifier.fromEnv({ env: { NOTIFY_SOCKET: '/x', WATCHDOG_USEC: String(60 * 86_400 * 1e6) }, logs, pid: 2, send: () => Promise.resolve(null) })!;
    notifier.stopWatchdog();
  } finally {
    globalThis.setInterval = real;
  }
  t.deepEqual(delays, [2 ** 31 - 1]);
});
