// The built CLI (bin/clusterd.js, so `npm run build` first) against control servers on fake
// sources in this process: exit codes and --json output, as a user's script would see them.
import test from 'ava';
import { execa } from 'execa';
import { once } from 'node:events';
import { chmodSync, chownSync, existsSync, linkSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import http2 from 'node:http2';
import net from 'node:net';
import { socketPath } from '../../src/control/paths.js';
import { startControlServer } from '../../src/control/server.js';
import { ExitCode } from '../../src/exit-codes.js';
import { CLI, waitFor } from '../helpers/cluster.js';
import { tempDir } from '../control/helpers/dirs.js';
import { FakeSource, twoWorkers } from '../control/helpers/fake-source.js';

test.before(() => {
  if (!existsSync(new URL('../../dist/cli/main.js', import.meta.url))) throw new Error('dist/ is missing: run `npm run build` first');
});

function clusterd(dir: string, ...args: string[]) {
  return execa(process.execPath, [CLI, ...args], { env: { CLUSTERD_RUNTIME_DIR: dir, NO_COLOR: '' }, reject: false });
}

function clusterdAt(columns: number, dir: string, ...args: string[]) {
  return execa(process.execPath, [CLI, ...args], { env: { CLUSTERD_RUNTIME_DIR: dir, NO_COLOR: '', COLUMNS: String(columns) }, reject: false });
}

async function serve(t: Parameters<typeof tempDir>[0], name: string, dir: string, tcp?: { host: string; port: number; token: string }, source = new FakeSource(twoWorkers(name))) {
  const server = await startControlServer({ name, source, dir, tcp });
  t.teardown(() => server.close());
  return server;
}

test('status --json prints the cluster, status prints the table', async (t) => {
  const dir = tempDir(t);
  await serve(t, 'api', dir);
  const json = await clusterd(dir, 'status', '--json');
  t.is(json.exitCode, 0, json.stderr);
  const parsed = JSON.parse(json.stdout) as { name: string; workers: { id: number; lag: { p99: number }; elu: number }[] };
  t.is(parsed.name, 'api');
  t.deepEqual(parsed.workers.map((w) => [w.id, w.lag.p99, w.elu]), [[1, 2.5, 0.12], [2, 210, 0.93]]);

  const table = await clusterd(dir, 'status', 'api');
  t.is(table.exitCode, 0, table.stderr);
  t.is(table.stdout.split('\n').length, 5);
  t.regex(table.stdout, /^ 2 {2}40002 {2}ready/m);

  // Fitted to COLUMNS when stdout is not a terminal, as to a terminal's width.
  for (const command of ['status', 'top']) {
    const narrow = await clusterdAt(60, dir, command, 'api', ...(command === 'top' ? ['--once'] : []));
    t.is(narrow.exitCode, 0, narrow.stderr);
    const lines = narrow.stdout.split('\n');
    t.true(lines.every((line) => line.length <= 60), `${command}:\n${narrow.stdout}`);
    t.true(lines.some((line) => /^ 2 .*ready/.test(line)), narrow.stdout);
  }
});

test('status with no cluster, or an unknown name: one line naming what it looked for, exit 7', async (t) => {
  const dir = tempDir(t);
  const none = await clusterd(dir, 'status');
  t.is(none.exitCode, ExitCode.NOT_FOUND);
  t.is(none.stderr, `clusterd: no running cluster found (looked in ${dir})`);
  t.is(none.stdout, '');

  await serve(t, 'api', dir);
  const unknown = await clusterd(dir, 'status', 'web', '--json');
  t.is(unknown.exitCode, ExitCode.NOT_FOUND);
  t.is(unknown.stderr, `clusterd: no cluster named web is running (looked in ${dir}; running: api)`);

  await serve(t, 'web', dir);
  const ambiguous = await clusterd(dir, 'top', '--once');
  t.is(ambiguous.exitCode, ExitCode.USAGE);
  t.is(ambiguous.stderr, 'clusterd: 2 clusters are running (api, web): name the one you mean');
});

test('ls lists the running clusters; none is not an error', async (t) => {
  const dir = tempDir(t);
  const empty = await clusterd(dir, 'ls', '--json');
  t.is(empty.exitCode, 0);
  t.deepEqual(JSON.parse(empty.stdout), []);

  await serve(t, 'api', dir);
  await serve(t, 'web', dir);
  const listed = await clusterd(dir, 'ls', '--json');
  t.is(listed.exitCode, 0, listed.stderr);
  t.deepEqual((JSON.parse(listed.stdout) as { name: string }[]).map((c) => c.name), ['api', 'web']);
});

test('ls says which cluster holds its socket without answering (a master stopped with SIGSTOP was left out, as if nothing ran)', async (t) => {
  const dir = tempDir(t);
  await serve(t, 'api', dir);
  // A process that listens on the socket and never answers, as a stopped master's kernel still accepts.
  const mute = net.createServer(() => {}).listen(socketPath('frozen', dir));
  await once(mute, 'listening');
  t.teardown(() => mute.close());
  const listed = await clusterd(dir, 'ls', '--json');
  t.is(listed.exitCode, 0, listed.stderr);
  t.deepEqual((JSON.parse(listed.stdout) as { name: string }[]).map((c) => c.name), ['api']);
  t.is(listed.stderr, 'frozen: its master holds the control socket but did not answer (stopped, or its event loop blocked?)');
});

test('a link to a cluster\'s socket is not a second cluster: ls lists it once, status without NAME finds it, status LINK is no cluster', async (t) => {
  const dir = tempDir(t);
  await serve(t, 'api', dir);
  symlinkSync(socketPath('api', dir), socketPath('soft', dir));
  linkSync(socketPath('api', dir), socketPath('hard', dir));
  const listed = await clusterd(dir, 'ls', '--json');
  t.is(listed.exitCode, 0, listed.stderr);
  t.deepEqual((JSON.parse(listed.stdout) as { name: string }[]).map((c) => c.name), ['api']);
  const only = await clusterd(dir, 'status', '--json');
  t.is(only.exitCode, 0, only.stderr);
  t.is((JSON.parse(only.stdout) as { name: string }).name, 'api');
  for (const name of ['soft', 'hard']) {
    const named = await clusterd(dir, 'status', name);
    t.is(named.exitCode, ExitCode.NOT_FOUND, named.stdout);
    t.is(named.stderr, `clusterd: no cluster named ${name} is running: ${socketPath(name, dir)} leads to cluster api`);
  }
});

test('a runtime directory that start refuses (open to others, another user\'s) is not read: one line, exit 2, no socket in it asked', async (t) => {
  const dir = tempDir(t);
  let asked = 0;
  const source = new (class extends FakeSource {
    override status() {
      asked++;
      return super.status();
    }
  })(twoWorkers('api'));
  await serve(t, 'api', dir, undefined, source);
  const before = asked;
  chmodSync(dir, 0o777);
  t.teardown(() => chmodSync(dir, 0o700));
  for (const command of [['ls'], ['status'], ['status', 'api'], ['stop'], ['stop', '--all'], ['dashboard', 'api']]) {
    const result = await clusterd(dir, ...command);
    t.is(result.exitCode, ExitCode.USAGE, command.join(' '));
    t.is(result.stderr, `clusterd: the runtime directory ${dir} is open to other users (mode 0777), so clusterd trusts no control socket in it (a directory of this user's alone, mode 0700, is used; see CLUSTERD_RUNTIME_DIR)`);
  }
  t.is(asked, before, 'no command asked the cluster');
  chmodSync(dir, 0o700);
  if (process.getuid?.() !== 0) return;
  // Another user's (root can make one): refused unless private to that user, which root may read
  // (`sudo clusterd stop api` with that user's CLUSTERD_RUNTIME_DIR).
  chownSync(dir, 65534, 65534);
  t.teardown(() => chownSync(dir, 0, 0));
  chmodSync(dir, 0o750);
  const shared = await clusterd(dir, 'status');
  t.is(shared.exitCode, ExitCode.USAGE);
  t.regex(shared.stderr, /belongs to uid 65534, not to this user \(uid 0\), so clusterd trusts no control socket in it/);
  chmodSync(dir, 0o700);
  const owned = await clusterd(dir, 'status', 'api');
  t.is(owned.exitCode, 0, owned.stderr);
  t.regex(owned.stdout, /api/);
});

test('a runtime directory that does not exist: no cluster runs, and none is made', async (t) => {
  const dir = join(tempDir(t), 'missing');
  const listed = await clusterd(dir, 'ls');
  t.is(listed.exitCode, 0);
  t.is(listed.stderr, `no running clusters (looked in ${dir})`);
  const status = await clusterd(dir, 'status', 'api');
  t.is(status.exitCode, ExitCode.NOT_FOUND);
  t.false(existsSync(dir));
});

test('words after `--` are the command\'s operands: NAME, or refused past those it takes; start says they go to the app', async (t) => {
  const dir = tempDir(t);
  await serve(t, 'api', dir);
  await serve(t, 'web', dir);
  const named = await clusterd(dir, 'status', '--json', '--', 'web');
  t.is(named.exitCode, 0, named.stderr);
  t.is((JSON.parse(named.stdout) as { name: string }).name, 'web');
  const unknown = await clusterd(dir, 'stop', '--', 'zz');
  t.is(unknown.exitCode, ExitCode.NOT_FOUND);
  t.is(unknown.stderr, `clusterd: no cluster named zz is running (looked in ${dir}; running: api, web)`);
  for (const args of [['status', 'api', '--', 'extra'], ['status', '--', 'api', 'extra'], ['ls', '--', 'extra']]) {
    const extra = await clusterd(dir, ...args);
    t.is(extra.exitCode, ExitCode.USAGE, args.join(' '));
    t.is(extra.stderr, 'clusterd: Unknown argument: extra');
  }
  const start = await clusterd(dir, 'start', '--', 'app.js');
  t.is(start.exitCode, ExitCode.USAGE);
  t.regex(start.stderr, /^clusterd: Missing the app to run: .*; the words after `--` are the app's own arguments, not the app \(`clusterd start <entry> -- ARGS\.\.\.`\)$/);
});

test('top --once prints one plain snapshot with sparklines', async (t) => {
  const dir = tempDir(t);
  await serve(t, 'api', dir);
  const top = await clusterd(dir, 'top', '--once');
  t.is(top.exitCode, 0, top.stderr);
  t.false(top.stdout.includes('\x1b'));
  t.regex(top.stdout, /^ 1 {2}40001 .*▁$/m);
  t.regex(top.stdout, /^ 2 {2}40002 .*█$/m);
});

test('remote: --control with the right token works; a wrong one exits 8', async (t) => {
  const dir = tempDir(t);
  const server = await serve(t, 'api', dir, { host: '127.0.0.1', port: 0, token: 's3cret' });
  const control = `127.0.0.1:${server.tcpAddress!.port}`;
  const other = tempDir(t); // nothing local there: the answer can only come over TCP

  const good = await clusterd(other, 'status', '--json', '--control', control, '--control-token', 's3cret');
  t.is(good.exitCode, 0, good.stderr);
  t.is((JSON.parse(good.stdout) as { name: string }).name, 'api');

  const bad = await clusterd(other, 'status', '--control', control, '--control-token', 'nope');
  t.is(bad.exitCode, ExitCode.UNAUTHENTICATED);
  t.is(bad.stderr, `clusterd: the cluster at ${control} refused the call: wrong control token`);

  const missing = await clusterd(other, 'ls', '--control', control);
  t.is(missing.exitCode, ExitCode.USAGE);
});

test('top, not on a terminal, prints a snapshot per change; killing it releases its watch', async (t) => {
  const dir = tempDir(t);
  const source = new FakeSource(twoWorkers('api'));
  const server = await serve(t, 'api', dir, undefined, source);
  const top = execa(process.execPath, [CLI, 'top', '--interval', '50ms'], { env: { CLUSTERD_RUNTIME_DIR: dir }, reject: false, buffer: false });
  t.teardown(() => top.kill('SIGKILL'));
  let output = '';
  top.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const snapshots = (): number => output.split('\n').filter((line) => line.startsWith('api  master')).length;
  await waitFor(() => snapshots() >= 1, { what: 'the first snapshot' });
  source.update(twoWorkers('api'));
  await waitFor(() => snapshots() >= 2, { what: 'a snapshot after the change' });
  t.false(output.includes('\x1b'));
  t.is(server.watchers, 1);

  top.kill('SIGKILL');
  await once(top, 'exit');
  await waitFor(() => server.watchers === 0 && source.listeners.size === 0, { what: 'the watch to be released' });
  t.pass();
});

test('top exits 0 on SIGINT, and with a note when the cluster stops', async (t) => {
  const dir = tempDir(t);
  const server = await serve(t, 'api', dir);
  const interrupted = execa(process.execPath, [CLI, 'top'], { env: { CLUSTERD_RUNTIME_DIR: dir }, reject: false, buffer: false });
  await once(interrupted.stdout!, 'data');
  interrupted.kill('SIGINT');
  t.is((await interrupted).exitCode, 0);

  const stopped = execa(process.execPath, [CLI, 'top'], { env: { CLUSTERD_RUNTIME_DIR: dir }, reject: false });
  await waitFor(() => server.watchers === 1, { what: 'top to watch' });
  await server.close();
  const result = await stopped;
  t.is(result.exitCode, 0);
  t.is(result.stderr, 'clusterd: cluster api stopped');
});

test('--control at a server whose gRPC reply is past the client\'s limit but of a length a clusterd may send: "too large", not "no clusterd"', async (t) => {
  const other = tempDir(t);
  // A gRPC frame's header claiming 96 MiB (a Dashboard snapshot for many workers could), then the end.
  const header = Buffer.from([0, 0x06, 0, 0, 0]);
  const server = http2.createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'application/grpc' });
    response.end(header);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const control = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  const result = await clusterd(other, 'status', '--control', control, '--control-token', 's3cret');
  t.is(result.exitCode, ExitCode.INTERNAL, result.stderr);
  t.is(result.stderr, `clusterd: the cluster at ${control} sent a reply too large for this client (${0x0600_0000} bytes, past its limit of ${64 * 1024 * 1024})`);
});

test('--control at an HTTP/2 server that is no clusterd: "no clusterd control plane", exit 7, whatever it answers', async (t) => {
  // A 404 read as "runs a clusterd without this operation" (exit 1), a 200 as "control call failed" (exit 1).
  const other = tempDir(t);
  // What grpc-js makes of each reply, in brackets after the address.
  const replies: [number, string, string][] = [
    [404, 'not found', 'Received HTTP status code 404'],
    [503, 'unavailable', 'Received HTTP status code 503'],
    [200, '', 'Received RST_STREAM with code 0 (Call ended without gRPC status)'],
    [200, '<html>hello</html>', 'Received message larger than max '],
    // A frame of 3 bytes no message parses (wire type 7 is none): `abc` parsed once ClusterStatus had a field 12.
    [200, '\u0000\u0000\u0000\u0000\u0003\u007f\u007f\u007f', 'Response message parsing error'],
  ];
  for (const [status, body, details] of replies) {
    const server = http2.createServer((_request, response) => {
      response.statusCode = status;
      response.end(body);
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    t.teardown(() => server.close());
    const control = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    const result = await clusterd(other, 'status', '--control', control, '--control-token', 's3cret');
    t.is(result.exitCode, ExitCode.NOT_FOUND, `${status} ${body}: ${result.stderr}`);
    t.true(result.stderr.startsWith(`clusterd: no clusterd control plane at ${control} (${details}`), result.stderr);
    t.true(result.stderr.endsWith(')') && !result.stderr.includes('\n'));
  }
});
