// An app's listen({ port, exclusive: true }) is bound by the worker itself (README "How ports are
// shared"): the master hears of it from the worker, says the port is not shared, lists it, and names
// the port and the cause when another worker cannot bind it.
import { networkInterfaces } from 'node:os';
import test from 'ava';
import { fixture, launch, startCluster, waitFor } from '../helpers/cluster.js';
import { control } from '../helpers/control.js';
import { freePort, getJson } from '../helpers/requests.js';
import { ExitCode } from '../../src/exit-codes.js';
import { exclusiveTarget } from '../../src/worker/exclusive.js';


/**
 * The failure line's part that names the cause; `holder`, the worker named as holding the port (null:
 * named or not, as when two workers bind at once and the holder's report may come after the failure).
 */
function exclusiveCause(port: number, holder: number | null): RegExp {
  const holds = holder === null ? '(worker \\d holds it: )?' : `worker ${holder} holds it: `;
  return new RegExp(
    `cannot listen on port ${port} \\(127\\.0\\.0\\.1:${port}\\): address already in use \\(EADDRINUSE\\): ${holds}the app listens with exclusive: true, so each worker binds the port alone`,
  );
}

test('exclusive: true on a fixed port with -i 2: the master says the port is not shared, then exits 4 with the port and the cause (it exited 3, "failed to boot 3 times")', async (t) => {
  const port = await freePort();
  const master = launch(['start', fixture('exclusive-port.js'), '-i', '2', '--log-format', 'json', '--listen-timeout', '10m'], { env: { PORT: String(port) } });
  t.teardown(() => master.process.kill('SIGKILL'));
  t.is(await master.exited, ExitCode.LISTEN_FAILED, master.stderr.join('\n'));
  const said = master.lines.filter((line) => line.event === 'listen-exclusive');
  t.is(said.length, 1, 'said once');
  t.regex(said[0]!.message, new RegExp(`listens on 127\\.0\\.0\\.1:${port} with exclusive: true, which the worker binds alone: the port is not shared`));
  const fatal = master.lines.find((line) => line.event === 'fatal');
  t.regex(fatal?.message ?? '', exclusiveCause(port, null));
  // The app has no 'error' listener: its crash reads as alone, with no frame of clusterd's under Node's trace.
  const stderr = master.lines.filter((line) => line.stream === 'stderr').map((line) => String(line.message));
  const emitted = stderr.indexOf("Emitted 'error' event on Server instance at:");
  t.not(emitted, -1, stderr.join('\n'));
  t.regex(stderr[emitted + 1] ?? '', /^\s+at .*\(node:/, stderr.slice(emitted, emitted + 4).join('\n'));
});

test('exclusive: true with -i 1: the ready line and status list the port as the worker\'s own; a reload fails naming the port and the cause, the old worker serves on', async (t) => {
  const port = await freePort();
  const ctl = control(t);
  const cluster = await startCluster(fixture('exclusive-port.js'), { instances: 1, flags: ['--name', 'exclusive-one'], env: { ...ctl.env, PORT: String(port) } });
  t.teardown(() => cluster.stop('SIGKILL'));
  const ready = cluster.lines.find((line) => line.event === 'ready')!;
  t.deepEqual(ready.addresses, [`127.0.0.1:${port}`]);
  t.regex(ready.message, new RegExp(`ready on 127\\.0\\.0\\.1:${port} \\(exclusive: worker 1's own\\)`));
  const listed = JSON.parse(String((await ctl.run(['status', 'exclusive-one', '--json'])).stdout)) as { addresses: string[] };
  t.deepEqual(listed.addresses, [`127.0.0.1:${port}`]);

  const reload = await ctl.run(['reload', 'exclusive-one']);
  t.is(reload.exitCode, ExitCode.BOOT_FAILED, String(reload.stderr));
  t.regex(String(reload.stderr), new RegExp(`worker 1's replacement ${exclusiveCause(port, 1).source}`));
  t.deepEqual(await getJson(port), { pid: cluster.pids[0] });
  t.is(cluster.lines.filter((line) => line.event === 'listen-exclusive').length, 1, 'said once, not again for the replacement');
});

/** Whether this host has IPv6 (a loopback `::1`): the v6-only test needs it. */
const hasIPv6 = Object.values(networkInterfaces()).some((addresses) => addresses?.some((address) => address.family === 'IPv6' && address.internal));

(hasIPv6 ? test : test.skip)(
  "exclusive: true on 127.0.0.1 beside the cluster's shared `::` with ipv6Only on the same port: listed as the worker's own, not refused as a claim of the master's address",
  async (t) => {
    const port = await freePort();
    const ctl = control(t);
    const cluster = await startCluster(fixture('exclusive-beside-v6only.js'), { instances: 1, flags: ['--name', 'exclusive-v6only'], env: { ...ctl.env, PORT: String(port) } });
    t.teardown(() => cluster.stop('SIGKILL'));
    // The v6-only `::` takes no IPv4: the worker's own socket answers there.
    t.like(await getJson(port), { pid: cluster.pids[0], server: 'exclusive' });
    // The worker's report is refused as a claim of the master's `::` (as if that took IPv4 too), or listed.
    const malformed = () => cluster.lines.find((line) => line.event === 'malformed-message');
    const listed = await waitFor(
      async () => {
        if (malformed()) return [];
        const { addresses } = JSON.parse(String((await ctl.run(['status', 'exclusive-v6only', '--json'])).stdout)) as { addresses: string[] };
        return addresses.includes(`127.0.0.1:${port}`) && addresses;
      },
      { what: 'the exclusive address in status, or a malformed-message line' },
    );
    t.is(malformed(), undefined);
    t.deepEqual(listed, [`[::]:${port}`, `127.0.0.1:${port}`]);
  },
);

test('exclusiveTarget: only an options object with exclusive on a fixed port or a path, without reusePort', (t) => {
  t.deepEqual(exclusiveTarget([{ port: 3000, exclusive: true }]), { address: null, port: 3000 });
  t.deepEqual(exclusiveTarget([{ port: '3000', host: '::1', exclusive: 1 }]), { address: '::1', port: 3000 });
  t.deepEqual(exclusiveTarget([{ path: '/run/app.sock', exclusive: true }]), { address: '/run/app.sock', port: -1 });
  t.is(exclusiveTarget([{ port: 0, exclusive: true }]), null, 'port 0: a port of its own in each worker');
  t.is(exclusiveTarget([{ port: 3000, exclusive: true, reusePort: true }]), null, 'the kernel shares it');
  t.is(exclusiveTarget([{ fd: 3, exclusive: true }]), null);
  t.is(exclusiveTarget([{ port: 3000 }]), null);
  // libuv binds a path past sun_path's 108 bytes cut short: not one the master can list as it is.
  t.is(exclusiveTarget([{ path: `/tmp/${'a'.repeat(150)}`, exclusive: true }]), null);
  t.deepEqual(exclusiveTarget([{ path: `/tmp/${'a'.repeat(90)}`, exclusive: true }]), { address: `/tmp/${'a'.repeat(90)}`, port: -1 });
  t.is(exclusiveTarget([3000, '127.0.0.1']), null);
});
