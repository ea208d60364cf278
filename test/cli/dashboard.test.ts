// `clusterd dashboard [NAME]` against real clusters started without --dashboard: the window so far
// at once, the page's API and events served from the CLI's process, actions through the control
// plane (token rules on TCP, none on a unix socket), exit 0 on SIGTERM, 7 when the cluster stops;
// bad input is one line and its exit code.
import test from 'ava';
import { execa, type ResultPromise } from 'execa';
import { once } from 'node:events';
import http from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { DashboardMessage } from '../../src/dashboard/feed.js';
import { ExitCode } from '../../src/exit-codes.js';
import { CLI, fixture, get, killOnTeardown, startCluster, waitFor } from '../helpers/cluster.js';
import { control, type Control } from '../helpers/control.js';

interface Served {
  child: ResultPromise;
  /** The one line it printed: http://HOST:PORT/ or unix:PATH. */
  url: string;
  stderr: () => string;
}

/** Runs `clusterd dashboard ...args` and resolves with the URL it prints once it serves. */
async function serveDashboard(t: Parameters<typeof control>[0], ctl: Control, args: string[]): Promise<Served> {
  const child = execa(process.execPath, [CLI, 'dashboard', ...args], { env: ctl.env, reject: false, buffer: false, stdin: 'ignore' });
  killOnTeardown(t, child);
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const lines = createInterface({ input: child.stdout! });
  const [url] = (await Promise.race([once(lines, 'line'), child.then(() => [null])])) as [string | null];
  if (url === null) throw new Error(`clusterd dashboard exited before serving: ${stderr}`);
  return { child, url, stderr: () => stderr };
}

function request(target: { port: number } | { socketPath: string }, method: string, path: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const where = 'port' in target ? { host: '127.0.0.1', port: target.port } : { socketPath: target.socketPath };
    const call = http.request({ ...where, method, path, headers, agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
    });
    call.on('error', reject);
    call.end();
  });
}

/** Waits until every worker of `name` has a sample: the master's feed has them in its window. */
async function sampled(ctl: Control, name: string): Promise<void> {
  await waitFor(async () => (await ctl.workers(name)).every((worker) => worker.lag !== null), { what: 'a sample of every worker' });
}

test('over TCP: the window at once, one view per worker; actions with the token (from --dashboard-token-file) only; SIGTERM exits 0', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('hello.js'), { instances: 2, flags: ['--name', 'dashcli', '--stats-interval', '250ms'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  await sampled(ctl, 'dashcli');
  // The token from a file (its trailing newline is not part of it): nothing to see in ps.
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-dash-token-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'token'), 's3cret\n', { mode: 0o600 });
  const served = await serveDashboard(t, ctl, ['dashcli', '--dashboard-token-file', join(dir, 'token')]);
  t.regex(served.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  const port = Number(new URL(served.url).port);

  // What the master kept before this process started is there in its first answer.
  const status = JSON.parse((await get(port, '/api/status')).body) as DashboardMessage;
  t.is(status.type, 'snapshot');
  t.true(status.type === 'snapshot' && status.name === 'dashcli' && status.actions && status.token);
  t.deepEqual(status.workers.map((worker) => [worker.id, worker.pid]), [[1, cluster.pids[0]], [2, cluster.pids[1]]]);
  t.true(status.workers.every((worker) => worker.buckets.length >= 1 && worker.latest !== null), 'history at once');
  const page = await get(port, '/');
  t.is(page.status, 200);
  t.regex(String(page.headers['content-security-policy']), /script-src 'self'/);

  const auth = { Authorization: 'Bearer s3cret' };
  t.is((await request({ port }, 'POST', '/api/restart/1')).status, 401);
  t.is((await request({ port }, 'POST', '/api/restart/1', { Authorization: 'Bearer wrong' })).status, 401);
  t.is((await request({ port }, 'POST', '/api/restart/9', auth)).status, 404);
  const restarted = await request({ port }, 'POST', '/api/restart/1', auth);
  t.is(restarted.status, 200, restarted.body);
  t.not((JSON.parse(restarted.body) as { pid: number }).pid, cluster.pids[0]);
  const loop = await request({ port }, 'POST', '/api/loop/2?duration=200ms', auth);
  t.is(loop.status, 200, loop.body);
  t.is((JSON.parse(loop.body) as { worker: number }).worker, 2);
  const profile = await request({ port }, 'POST', '/api/profile/2?duration=200ms', auth);
  t.is(profile.status, 200, profile.body);
  t.regex(String(profile.headers['content-disposition']), /^attachment; filename="dashcli-w2-\d{8}T\d{6}\.cpuprofile"$/);
  t.true(Array.isArray((JSON.parse(profile.body) as { nodes: unknown }).nodes));
  t.is((await request({ port }, 'POST', '/api/profile/2?duration=1h', auth)).status, 400);

  // The restart reaches the page's window as a marker, through the master's feed and this copy.
  await waitFor(async () => (JSON.parse((await get(port, '/api/status')).body) as DashboardMessage).markers.some((marker) => marker.kind === 'restart' && marker.worker === 1), {
    what: 'the restart marker',
  });

  served.child.kill('SIGTERM');
  const result = await served.child;
  t.is(result.exitCode, 0);
  t.is(served.stderr(), '');
  t.is((await ctl.workers('dashcli')).length, 2, 'the cluster runs on');
});

test('on a unix socket: actions without a token; the cluster stopping ends it with one line, exit 0 (as top and logs -f)', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('hello.js'), { instances: 1, flags: ['--name', 'dashsock'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  const socketPath = join(ctl.env.CLUSTERD_RUNTIME_DIR, 'dash.sock');
  const served = await serveDashboard(t, ctl, ['dashsock', '--listen', socketPath]);
  t.is(served.url, `unix:${socketPath}`);
  const status = JSON.parse((await request({ socketPath }, 'GET', '/api/status')).body) as DashboardMessage;
  t.true(status.type === 'snapshot' && status.actions && !status.token);
  t.is((await request({ socketPath }, 'POST', '/api/restart/1')).status, 200);

  const stopped = await ctl.run(['stop', 'dashsock']);
  t.is(stopped.exitCode, 0, String(stopped.stderr));
  const result = await served.child;
  t.is(result.exitCode, 0);
  t.is(served.stderr(), 'clusterd: the cluster dashsock stopped; its dashboard stops too\n');
});

test('--control: a remote cluster\'s dashboard through its TCP control listener and token; a wrong token is one line, exit 8', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('hello.js'), { instances: 2, flags: ['--name', 'dashremote', '--control', '127.0.0.1:0', '--control-token', 's3cret'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  const address = String(cluster.lines.find((line) => line.event === 'ready')!.control);
  // Another runtime directory: the cluster is not local to this dashboard, only --control reaches it.
  const elsewhere = control(t);
  const served = await serveDashboard(t, elsewhere, ['dashremote', '--control', address, '--control-token', 's3cret']);
  const port = Number(new URL(served.url).port);
  const status = JSON.parse((await get(port, '/api/status')).body) as DashboardMessage;
  t.true(status.type === 'snapshot' && status.name === 'dashremote');
  t.deepEqual(status.type === 'snapshot' ? status.workers.map((worker) => worker.pid).sort() : [], [...cluster.pids].sort());
  served.child.kill('SIGTERM');
  t.is((await served.child).exitCode, 0);

  const wrong = await elsewhere.run(['dashboard', 'dashremote', '--control', address, '--control-token', 'nope'], { timeoutMs: 30_000 });
  t.is(wrong.exitCode, ExitCode.UNAUTHENTICATED, String(wrong.stderr));
  t.is(String(wrong.stderr).trim().split('\n').length, 1, String(wrong.stderr));
  t.regex(String(wrong.stderr), /^clusterd: /);
});

test('a master that dies without ending the stream (SIGKILL: its socket just closes): the connection is lost, exit 7 (as top and logs -f)', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('hello.js'), { instances: 1, flags: ['--name', 'dashkill'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  const served = await serveDashboard(t, ctl, ['dashkill']);
  process.kill(cluster.masterPid, 'SIGKILL');
  const result = await served.child;
  t.is(result.exitCode, ExitCode.NOT_FOUND);
  t.regex(served.stderr(), /^clusterd: lost the connection to cluster dashkill at .*dashkill\.sock; its dashboard stops too\n$/);
});

test('bad input: one line and its exit code (unknown NAME 7, bad --listen 2, port in use 4)', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('hello.js'), { instances: 1, flags: ['--name', 'dashbad'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  const taken = net.createServer().listen(0, '127.0.0.1');
  await once(taken, 'listening');
  t.teardown(() => taken.close());
  const takenPort = (taken.address() as net.AddressInfo).port;
  const cases: Array<[string[], number, RegExp]> = [
    [['nosuch'], ExitCode.NOT_FOUND, /^clusterd: no cluster named nosuch is running/],
    [['dashbad', '--listen', 'localhost'], ExitCode.USAGE, /^clusterd: Expected `--listen` to be HOST:PORT, .* or a unix socket path/],
    [['dashbad', '--listen', '127.0.0.1:70000'], ExitCode.USAGE, /--listen/],
    [['dashbad', '--listen', './d.sock', '--dashboard-token', 'x'], ExitCode.USAGE, /--dashboard-token/],
    [['dashbad', '--dashboard-token', ' padded '], ExitCode.USAGE, /--dashboard-token/],
    [['dashbad', '--listen', './d.sock', '--dashboard-token-file', '/etc/hostname'], ExitCode.USAGE, /^clusterd: `--dashboard-token-file` is for a TCP --listen/],
    [['dashbad', '--dashboard-token-file', '/nonexistent/clusterd-token'], ExitCode.USAGE, /^clusterd: Cannot read `--dashboard-token-file` \/nonexistent\/clusterd-token: ENOENT$/],
    [['dashbad', '--dashboard-token', 'x', '--dashboard-token-file', '/etc/hostname'], ExitCode.USAGE, /^clusterd: Expected one of `--dashboard-token` and `--dashboard-token-file`, got both$/],
    [['dashbad', '--listen', `127.0.0.1:${takenPort}`], ExitCode.LISTEN_FAILED, new RegExp(`^clusterd: cannot serve dashboard on 127\\.0\\.0\\.1:${takenPort}: address already in use$`)],
    [['dashbad', 'extra'], ExitCode.USAGE, /^clusterd: /],
  ];
  for (const [args, code, line] of cases) {
    const result = await ctl.run(['dashboard', ...args], { timeoutMs: 30_000 });
    t.is(result.exitCode, code, `${args.join(' ')}: ${String(result.stderr)}`);
    const lines = String(result.stderr).trim().split('\n');
    t.is(lines.length, 1, String(result.stderr));
    t.regex(lines[0]!, line);
    t.is(String(result.stdout), '', 'no URL printed');
  }
});
