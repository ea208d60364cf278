// --dashboard on a real cluster: the page and its files, /api/status and /events as the master
// builds them, actions refused without the token (403 read-only, 401 missing or wrong) and run
// with it; bad input is one line and exit 2.
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import http from 'node:http';
import { once } from 'node:events';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { captureDuration, checkBearer, crossSite, exposureWarning, hostAllowed, MAX_BACKLOG_BYTES, MAX_STREAMS, parseAction, startDashboard } from '../../src/dashboard/server.js';
import { isLoopback } from '../../src/address.js';
import type { DashboardActions } from '../../src/dashboard/actions.js';
import { profileFileName } from '../../src/control/requests.js';
import { WRONG_TOKEN_BURST, WrongTokenBudget } from '../../src/control/wrong-tokens.js';
import type { DashboardMessage, DashboardSource, FeedMessage, FeedSnapshot, FeedUpdate } from '../../src/dashboard/feed.js';
import { ExitCode } from '../../src/exit-codes.js';
import { CLI, fixture, get, startCluster, waitFor, type Cluster } from '../helpers/cluster.js';

function post(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: '127.0.0.1', port, path, method: 'POST', headers, agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: JSON.parse(body) as Record<string, unknown> }));
    });
    request.on('error', reject);
    request.end();
  });
}

/** The dashboard's port, from the ready event's URL. */
function dashboardPort(cluster: Cluster): number {
  const ready = cluster.lines.find((line) => line.event === 'ready')!;
  return Number(new URL(ready.dashboard as string).port);
}

/** The first server-sent message on /events. */
function firstEvent(port: number): Promise<{ contentType: string | undefined; message: DashboardMessage }> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: '127.0.0.1', port, path: '/events', agent: false }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        text += chunk;
        const end = text.indexOf('\n\n');
        if (end === -1) return;
        request.destroy();
        resolve({ contentType: response.headers['content-type'], message: JSON.parse(text.slice('data: '.length, end)) as DashboardMessage });
      });
    });
    request.on('error', reject);
  });
}

test('parseAction: the four actions, worker ids 1 to 1024, nothing else', (t) => {
  t.deepEqual(parseAction('/api/reload'), { kind: 'reload' });
  t.deepEqual(parseAction('/api/restart/3'), { kind: 'restart', id: 3 });
  t.deepEqual(parseAction('/api/restart/1024'), { kind: 'restart', id: 1024 });
  t.deepEqual(parseAction('/api/profile/2'), { kind: 'profile', id: 2 });
  t.deepEqual(parseAction('/api/loop/1'), { kind: 'loop', id: 1 });
  for (const path of ['/api/restart/0', '/api/restart/1025', '/api/restart/01', '/api/restart/-1', '/api/restart/1e3', '/api/restart/', '/api/restart/1/x', '/api/reload/', '/api/stop', '/', '/api/profile/', '/api/profile/0', '/api/loop/1025', '/api/stack/1']) {
    t.is(parseAction(path), null, path);
  }
});

test('captureDuration: 5s by default; 100ms to 5m for a profile, to 1m for a loop; else a usage error naming `duration`', (t) => {
  t.is(captureDuration('/api/profile/1', 'profile'), 5000);
  t.is(captureDuration('/api/profile/1?duration=100ms', 'profile'), 100);
  t.is(captureDuration('/api/profile/1?duration=5m', 'profile'), 300_000);
  t.is(captureDuration('/api/loop/1?duration=1m', 'loop'), 60_000);
  for (const [url, kind] of [
    ['/api/profile/1?duration=99ms', 'profile'],
    ['/api/profile/1?duration=6m', 'profile'],
    ['/api/loop/1?duration=2m', 'loop'],
    ['/api/loop/1?duration=abc', 'loop'],
    ['/api/profile/1?duration=', 'profile'],
    ['/api/loop/1?duration=1s&duration=2s', 'loop'],
  ] as const) {
    const error = t.throws(() => captureDuration(url, kind), undefined, url);
    t.regex(error!.message, /`?duration/, url);
    t.false(error!.message.includes('--duration'), url);
  }
});

test('profileFileName: <cluster>-w<id>-<UTC time>.cpuprofile, as clusterd profile names it', (t) => {
  t.is(profileFileName('api', 3, new Date('2026-12-02T15:04:05.678Z')), 'api-w3-20261202T150405.cpuprofile');
});

test('checkBearer: missing, wrong or ok, whatever the header holds', (t) => {
  t.is(checkBearer(undefined, 's3cret'), 'missing');
  t.is(checkBearer('', 's3cret'), 'missing');
  t.is(checkBearer('s3cret', 's3cret'), 'missing');
  t.is(checkBearer('Basic czNjcmV0', 's3cret'), 'missing');
  t.is(checkBearer('Bearer ', 's3cret'), 'missing');
  t.is(checkBearer('Bearer s3cre', 's3cret'), 'wrong');
  t.is(checkBearer('Bearer s3cret2', 's3cret'), 'wrong');
  // The scheme in any case (RFC 9110); the token exactly.
  t.is(checkBearer('bearer s3cret', 's3cret'), 'ok');
  t.is(checkBearer('BEARER s3cret', 's3cret'), 'ok');
  t.is(checkBearer('bearer S3CRET', 's3cret'), 'wrong');
  t.is(checkBearer('Bearer s3cret', 's3cret'), 'ok');
});

test('isLoopback: a loopback address however it is written', (t) => {
  for (const host of ['127.0.0.1', '127.1', '127.0.0.2', '::1', '[::1]', '[0:0:0:0:0:0:0:1]', '0:0:0:0:0:0:0:1', '[::ffff:127.0.0.1]', 'localhost', 'LOCALHOST']) t.true(isLoopback(host), host);
  for (const host of ['0.0.0.0', '192.168.1.5', '::', '[::2]', 'evil.example', '127.0.0.1.evil.example', '', '[::ffff:10.0.0.1]']) t.false(isLoopback(host), host);
  // Bound as 127.1, the rebinding check holds as for 127.0.0.1 (it was off).
  t.false(hostAllowed('127.1', 'evil.example'));
  t.false(hostAllowed('[0:0:0:0:0:0:0:1]', 'evil.example'));
});

test('crossSite: another site\'s POST is told apart; the page\'s own and a program\'s are not', (t) => {
  t.is(crossSite({ headers: {} }), null);
  t.is(crossSite({ headers: { 'sec-fetch-site': 'same-origin' } }), null);
  t.is(crossSite({ headers: { 'sec-fetch-site': 'none' } }), null);
  t.is(crossSite({ headers: { 'sec-fetch-site': 'cross-site' } }), 'a cross-site request');
  t.is(crossSite({ headers: { origin: 'http://localhost:7071', host: 'localhost:7071' } }), null);
  t.is(crossSite({ headers: { origin: 'http://evil.example', host: 'localhost:7071' } }), 'a request from evil.example');
  t.is(crossSite({ headers: { origin: 'null', host: 'localhost:7071' } }), 'an Origin that is not a URL');
});

test('hostAllowed: bound to loopback, only loopback names (no DNS rebinding); bound elsewhere, any', (t) => {
  for (const header of ['127.0.0.1:7071', 'localhost:7071', 'LOCALHOST', '[::1]:7071', '127.0.0.2']) t.true(hostAllowed('127.0.0.1', header), header);
  for (const header of [undefined, '', 'evil.example:7071', 'evil.example', '127.0.0.1.evil.example:7071', '[::2]:7071']) t.false(hostAllowed('127.0.0.1', header), String(header));
  t.true(hostAllowed('::1', '[::1]:7071'));
  t.true(hostAllowed('0.0.0.0', 'myhost:7071'));
  t.true(hostAllowed('192.168.1.5', 'dash.internal'));
});

test('a dashboard bound to an address other than loopback says once at start that anyone who reaches it reads it; on loopback it says nothing', async (t) => {
  const open = await startCluster(fixture('hello.js'), { instances: 1, flags: ['--dashboard', '0.0.0.0:0', '--dashboard-token', 's3cret'] });
  t.teardown(() => open.stop());
  await open.waitForLine((line) => line.event === 'ready');
  const warnings = open.lines.filter((line) => line.event === 'dashboard-exposed');
  t.is(warnings.length, 1);
  t.regex(String(warnings[0]!.message), /not on a loopback address: its page and data .* readable by anyone who can reach it.*token is sent over plain HTTP.*TLS/);
  await open.stop();
  const local = await startCluster(fixture('hello.js'), { instances: 1, flags: ['--dashboard', '127.0.0.1:0'] });
  t.teardown(() => local.stop());
  await local.waitForLine((line) => line.event === 'ready');
  t.false(local.lines.some((line) => line.event === 'dashboard-exposed'));
});

test('exposureWarning: for any address but loopback, read-only or with a token; none on loopback or a socket', (t) => {
  t.regex(exposureWarning({ host: '0.0.0.0', port: 7071 }, null) ?? '', /http:\/\/0\.0\.0\.0:7071\/ .* read-only/);
  t.regex(exposureWarning({ host: '192.168.1.5', port: 7071 }, 'tok') ?? '', /plain HTTP/);
  for (const host of ['127.0.0.1', '::1', 'localhost', '127.1']) t.is(exposureWarning({ host, port: 7071 }, 'tok'), null, host);
  t.is(exposureWarning({ path: '/tmp/dash.sock' }, null), null);
});

test('read-only: the page, /api/status and /events one view per worker; every POST is 403', async (t) => {
  const cluster = await startCluster(fixture('hello.js'), { instances: 2, flags: ['--dashboard', '127.0.0.1:0', '--stats-interval', '100ms'] });
  t.teardown(() => cluster.stop());
  const port = dashboardPort(cluster);

  const page = await get(port, '/');
  t.is(page.status, 200);
  t.regex(page.headers['content-type'] ?? '', /^text\/html/);
  t.regex(String(page.headers['content-security-policy']), /script-src 'self'/);
  for (const path of ['/app.js', '/app.css']) t.is((await get(port, path)).status, 200, path);
  t.is((await get(port, '/nope')).status, 404);
  // An action asked with GET exists, by POST only; HEAD /events says what a GET would stream.
  for (const path of ['/api/reload', '/api/restart/1', '/api/profile/2', '/api/loop/1']) {
    const asGet = await get(port, path);
    t.is(asGet.status, 405, path);
    t.is(asGet.headers.allow, 'POST', path);
  }
  const head = await new Promise<http.IncomingMessage>((resolve, reject) => http.request({ host: '127.0.0.1', port, path: '/events', method: 'HEAD', agent: false }, resolve).on('error', reject).end());
  head.resume();
  t.is(head.statusCode, 200);
  t.is(head.headers['content-type'], 'text/event-stream');
  const rebound = await new Promise<number>((resolve, reject) =>
    http.get({ host: '127.0.0.1', port, path: '/api/status', headers: { Host: `evil.example:${port}` }, agent: false }, (response) => {
      response.resume();
      resolve(response.statusCode ?? 0);
    }).on('error', reject),
  );
  t.is(rebound, 421);

  const status = await waitFor(async () => {
    const snapshot = JSON.parse((await get(port, '/api/status')).body) as DashboardMessage;
    return snapshot.workers.every((worker) => worker.latest !== null && worker.buckets.length > 0) && snapshot;
  }, { what: 'a sample of every worker' });
  t.is(status.type, 'snapshot');
  t.deepEqual(status.workers.map((worker) => worker.id), [1, 2]);
  t.deepEqual(status.workers.map((worker) => worker.pid), cluster.pids);
  t.false(status.type === 'snapshot' && status.actions);

  const { contentType, message } = await firstEvent(port);
  t.is(contentType, 'text/event-stream');
  t.is(message.type, 'snapshot');
  t.is(message.workers.length, 2);

  t.is((await post(port, '/api/reload')).status, 403);
  t.is((await post(port, '/api/restart/1', { Authorization: 'Bearer anything' })).status, 403);
  t.is((await post(port, '/api/stop')).status, 404);
});

test('with --dashboard-token-file: 401 without the token or with a wrong one; with it a restart runs and marks the time axis, a refused one of a worker that does not exist does not', async (t) => {
  // From a file (its trailing newline is not part of it), so the token is not in the master's command line.
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-dash-token-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'token'), 's3cret\n', { mode: 0o600 });
  const cluster = await startCluster(fixture('hello.js'), { instances: 2, flags: ['--dashboard', '127.0.0.1:0', '--dashboard-token-file', join(dir, 'token')] });
  t.teardown(() => cluster.stop());
  t.false(readFileSync(`/proc/${cluster.masterPid}/cmdline`, 'utf8').includes('s3cret'));
  const port = dashboardPort(cluster);
  const status = async (): Promise<DashboardMessage> => JSON.parse((await get(port, '/api/status')).body) as DashboardMessage;
  t.true((await status()).type === 'snapshot' && ((await status()) as { actions: boolean }).actions);

  const missing = await post(port, '/api/restart/1');
  t.is(missing.status, 401);
  t.regex(String(missing.body.error), /Authorization: Bearer/);
  t.is((await post(port, '/api/restart/1', { Authorization: 'Bearer wrong' })).status, 401);
  t.is((await post(port, '/api/restart/7', { Authorization: 'Bearer s3cret' })).status, 404, 'no worker 7');
  t.is((await post(port, '/api/restart/x', { Authorization: 'Bearer s3cret' })).status, 404);

  const restarted = await post(port, '/api/restart/1', { Authorization: 'Bearer s3cret' });
  t.is(restarted.status, 200);
  t.not(restarted.body.pid, cluster.pids[0]);
  const markers = (await status()).markers;
  t.true(markers.some((marker) => marker.kind === 'restart' && marker.worker === 1), JSON.stringify(markers));
  await cluster.waitForLine((line) => line.event === 'operation' && line.operation === 'restart' && typeof line.who === 'string' && line.who.startsWith('the dashboard'));
  // The restart of worker 7 was refused for what was asked: logged (with its code), but nothing
  // happened to the cluster, so no marker (105 of them pushed the real ones out of the page's list).
  await cluster.waitForLine((line) => line.event === 'operation-failed' && line.worker === 7 && line.code === 'ERR_CLUSTERD_NO_WORKER');
  t.deepEqual(markers.filter((marker) => marker.failed), [], JSON.stringify(markers));
});

test('bad input: a bad --dashboard address, a token without --dashboard, an unreadable token file or both token flags is one line and exit 2', async (t) => {
  const run = (args: string[]) => execa(process.execPath, [CLI, 'start', fixture('hello.js'), '-i', '1', ...args], { reject: false, timeout: 30_000, stdin: 'ignore' });
  for (const args of [
    ['--dashboard', 'localhost'],
    ['--dashboard', '127.0.0.1:99999'],
    ['--dashboard-token', 'x'],
    ['--dashboard', '127.0.0.1:0', '--dashboard-token', ' padded '],
    ['--dashboard', './dash.sock', '--dashboard-token', 's3cret'],
    ['--dashboard-token-file', '/etc/hostname'],
    ['--dashboard', '127.0.0.1:0', '--dashboard-token-file', '/nonexistent/clusterd-token'],
    ['--dashboard', '127.0.0.1:0', '--dashboard-token', 's3cret', '--dashboard-token-file', '/etc/hostname'],
    ['--dashboard', './dash.sock', '--dashboard-token-file', '/etc/hostname'],
    ['--dashboard', `/tmp/${'x'.repeat(120)}.sock`],
    ['--dashboard', '/tmp/'],
  ]) {
    const result = await run(args);
    t.is(result.exitCode, ExitCode.USAGE, args.join(' '));
    const lines = String(result.stderr).trim().split('\n');
    t.is(lines.length, 1, String(result.stderr));
    t.regex(lines[0]!, /^clusterd: .*dashboard/);
  }
});

test('profile and loop: the .cpuprofile as an attachment, the breakdown as JSON; 401, 400, 404, busy and blocked 409', async (t) => {
  const cluster = await startCluster(fixture('busy-on-request.js'), {
    instances: 2,
    flags: ['--name', 'dashcap', '--watchdog', '0', '--dashboard', '127.0.0.1:0', '--dashboard-token', 's3cret'],
  });
  t.teardown(() => cluster.stop('SIGKILL'));
  const port = dashboardPort(cluster);
  const auth = { Authorization: 'Bearer s3cret' };

  const raw = await new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const request = http.request({ host: '127.0.0.1', port, path: '/api/profile/1?duration=200ms', method: 'POST', headers: auth, agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
    });
    request.on('error', reject);
    request.end();
  });
  t.is(raw.status, 200, raw.body);
  t.is(raw.headers['content-type'], 'application/json');
  t.regex(String(raw.headers['content-disposition']), /^attachment; filename="dashcap-w1-\d{8}T\d{6}\.cpuprofile"$/);
  t.is(Number(raw.headers['content-length']), Buffer.byteLength(raw.body));
  const profile = JSON.parse(raw.body) as { nodes: unknown[]; startTime: number; endTime: number };
  t.true(Array.isArray(profile.nodes) && profile.nodes.length > 0);

  const loop = await post(port, '/api/loop/2?duration=200ms', auth);
  t.is(loop.status, 200, JSON.stringify(loop.body));
  t.deepEqual(Object.keys(loop.body), ['worker', 'durationMs', 'phases', 'iterationsPerSec', 'callbacks', 'overheadPct'], 'the shape of clusterd loop --json');
  t.is(loop.body.worker, 2);
  t.deepEqual(Object.keys(loop.body.phases as object).sort(), ['check', 'close', 'idle', 'microtasks', 'nextTick', 'pending', 'poll', 'timers']);

  t.is((await post(port, '/api/profile/1?duration=200ms')).status, 401);
  t.is((await post(port, '/api/loop/1', { Authorization: 'Bearer nope' })).status, 401);
  for (const query of ['duration=50ms', 'duration=6m', 'duration=soon']) {
    const refused = await post(port, `/api/profile/1?${query}`, auth);
    t.is(refused.status, 400, query);
    t.regex(String(refused.body.error), /duration/, query);
  }
  t.is((await post(port, '/api/loop/1?duration=2m', auth)).status, 400, 'a loop runs a minute at most');
  const unknown = await post(port, '/api/profile/7?duration=200ms', auth);
  t.is(unknown.status, 404);
  t.regex(String(unknown.body.error), /no worker 7/);
  t.is((await post(port, '/api/loop/7', auth)).status, 404);

  // One measurement of a loop at a time: the second is refused while the first runs.
  const first = post(port, '/api/loop/1?duration=2s', auth);
  await cluster.waitForLine((line) => line.event === 'loop' && line.worker === 1 && line.durationMs === 2000);
  const second = await post(port, '/api/loop/1?duration=200ms', auth);
  t.is(second.status, 409);
  t.is(second.body.code, 'ERR_CLUSTERD_BUSY');
  t.is((await first).status, 200);

  // A loop blocked for good: nothing is measured, its stack comes back.
  const spun = JSON.parse((await get(cluster.port, '/spin')).body) as { worker: number };
  const blocked = await waitFor(async () => {
    const answer = await post(port, `/api/profile/${spun.worker}?duration=100ms`, auth);
    return answer.status === 409 && answer;
  }, { what: `worker ${spun.worker} blocked`, timeoutMs: 20_000 });
  t.is(blocked.body.code, 'ERR_CLUSTERD_BLOCKED');
  t.regex(String(blocked.body.error), new RegExp(`^worker ${spun.worker}'s event loop is blocked`));
  t.regex(String((blocked.body.stack as string[])[0]), /^spinForever \(file:.*busy-on-request\.js:\d+:\d+\)$/);
  t.is((await post(port, `/api/loop/${spun.worker}?duration=100ms`, auth)).status, 409);
});

/** One request over the unix socket `socketPath`. */
function overSocket(socketPath: string, method: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request({ socketPath, method, path, headers, agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on('error', reject);
    request.end();
  });
}

test('--dashboard on a unix socket: 0600, loopback names only, actions without a token but not from another site; refused when in use or not a socket; a stale one is replaced; removed on stop', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-dash-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const socket = join(dir, 'dash.sock');
  // Relative to where clusterd starts.
  const cluster = await startCluster(fixture('hello.js'), { instances: 2, cwd: dir, flags: ['--dashboard', './dash.sock'] });
  t.teardown(() => cluster.stop('SIGKILL'));
  t.is(cluster.lines.find((line) => line.event === 'ready')!.dashboard, `unix:${socket}`);
  t.is(statSync(socket).mode & 0o777, 0o600);

  // Reached through `ssh -L`, a socket is a loopback address to the browser: a page elsewhere that
  // points its name there (DNS rebinding) gets nothing, and one that POSTs a form acts on nothing.
  t.is((await overSocket(socket, 'GET', '/', { Host: 'evil.example' })).status, 421);
  t.is((await overSocket(socket, 'GET', '/', { Host: '127.0.0.1:7071' })).status, 200);
  for (const headers of [{ 'Sec-Fetch-Site': 'cross-site' }, { 'Sec-Fetch-Site': 'same-site' }, { Origin: 'http://evil.example' }] as Record<string, string>[]) {
    const refused = await overSocket(socket, 'POST', '/api/reload', headers);
    t.is(refused.status, 403, JSON.stringify(headers));
    t.regex(refused.body, /refused: /);
  }
  t.false(cluster.lines.some((line) => line.event === 'operation-requested'), 'nothing was asked');
  const snapshot = JSON.parse((await overSocket(socket, 'GET', '/api/status')).body) as DashboardMessage;
  t.true(snapshot.type === 'snapshot' && snapshot.actions && !snapshot.token, 'actions, and no token needed');
  // The page's own POSTs (same-origin), and a program's (no such header).
  const restarted = await overSocket(socket, 'POST', '/api/restart/1', { 'Sec-Fetch-Site': 'same-origin', Origin: 'http://localhost' });
  t.is(restarted.status, 200, restarted.body);
  const loop = await overSocket(socket, 'POST', '/api/loop/2?duration=200ms');
  t.is(loop.status, 200, loop.body);
  t.is((JSON.parse(loop.body) as { worker: number }).worker, 2);
  await cluster.waitForLine((line) => line.event === 'operation' && line.operation === 'restart' && line.who === 'the dashboard (unix socket)');

  const run = (args: string[]) => execa(process.execPath, [CLI, 'start', fixture('hello.js'), '-i', '1', '--name', 'second', ...args], { reject: false, timeout: 30_000, stdin: 'ignore' });
  const inUse = await run(['--dashboard', socket]);
  t.is(inUse.exitCode, ExitCode.LISTEN_FAILED);
  t.regex(String(inUse.stderr).trim(), new RegExp(`^clusterd: cannot serve dashboard on ${socket}: address already in use$`));
  const file = join(dir, 'plain.sock');
  writeFileSync(file, '');
  const notSocket = await run(['--dashboard', file]);
  t.is(notSocket.exitCode, ExitCode.LISTEN_FAILED);
  t.regex(String(notSocket.stderr).trim(), /^clusterd: cannot serve dashboard on .*plain\.sock: the path exists and is not a socket$/);
  const noDir = await run(['--dashboard', join(dir, 'nope', 'dash.sock')]);
  t.is(noDir.exitCode, ExitCode.LISTEN_FAILED);
  t.regex(String(noDir.stderr).trim(), /^clusterd: cannot serve dashboard on .*: no such directory$/);

  // Killed, the master leaves its socket behind; the next one replaces it. Stopped, it removes it.
  await cluster.stop('SIGKILL');
  t.true(existsSync(socket));
  const next = await startCluster(fixture('hello.js'), { instances: 1, flags: ['--dashboard', socket] });
  t.is((await overSocket(socket, 'GET', '/api/status')).status, 200);
  await next.stop();
  t.false(existsSync(socket));
});

/** A source whose snapshot is `snapshotBytes` long, and whose updates the test sends when it wants. */
function handSource(snapshotBytes: number): { source: DashboardSource; subscriptions: () => number; update: (bytes: number) => void } {
  const base = { now: 0, generation: 1, workersWanted: 1, totals: {}, workers: [], markers: [] };
  const listeners = new Set<(message: FeedMessage) => void>();
  let subscriptions = 0;
  let seq = 0;
  return {
    source: {
      snapshot: () => ({ ...base, type: 'snapshot', name: 'big', windowMs: 1, bucketMs: 1, statsIntervalMs: 1, pad: 'x'.repeat(snapshotBytes) }) as unknown as FeedSnapshot,
      subscribe: (listener) => {
        subscriptions++;
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
    },
    subscriptions: () => subscriptions,
    update: (bytes) => {
      const message = { ...base, type: 'update', seq: ++seq, pad: 'u'.repeat(bytes) } as unknown as FeedUpdate;
      for (const listener of listeners) listener(message);
    },
  };
}

const noActions: DashboardActions = {
  reload: () => Promise.reject(new Error('not here')),
  restart: () => Promise.reject(new Error('not here')),
  profile: () => Promise.reject(new Error('not here')),
  loop: () => Promise.reject(new Error('not here')),
};

/** /events on a socket that reads nothing until `resume()`; `seqs` are the updates' numbers as they arrive. */
function slowPage(port: number): { resume: () => void; seqs: number[]; snapshots: () => number; closed: () => boolean } {
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.write('GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  socket.pause();
  const seqs: number[] = [];
  let snapshots = 0;
  let text = '';
  socket.setEncoding('utf8');
  const read = (chunk: string): void => {
    text += chunk;
    for (;;) {
      // Chunked encoding puts sizes between the events; each event is whole, from `data: ` to a blank line.
      const start = text.indexOf('data: {');
      const end = start === -1 ? -1 : text.indexOf('\n\n', start);
      if (end === -1) return;
      const message = JSON.parse(text.slice(start + 'data: '.length, end)) as { type: string; seq?: number };
      if (message.type === 'snapshot') snapshots++;
      else seqs.push(message.seq!);
      text = text.slice(end + 2);
    }
  };
  let closed = false;
  socket.once('close', () => (closed = true));
  socket.on('error', () => {});
  return { resume: () => socket.on('data', read).resume(), seqs, snapshots: () => snapshots, closed: () => closed };
}

/** A dashboard of a hand source whose snapshot is larger than what the kernel's buffers on both sides take, so most of it stays queued in the master. */
async function bigDashboard(t: ExecutionContext): Promise<{ port: number; hand: ReturnType<typeof handSource> }> {
  const hand = handSource(24 * MAX_BACKLOG_BYTES);
  const dashboard = await startDashboard({ listen: { host: '127.0.0.1', port: 0 }, name: 'big', source: hand.source, actions: noActions, token: null });
  t.teardown(() => dashboard.close());
  return { port: (dashboard.address as { port: number }).port, hand };
}

test('a page that reads its snapshot slowly is kept, however large the snapshot (a 64-worker window is ~7 MB)', async (t) => {
  const { port, hand } = await bigDashboard(t);
  const page = slowPage(port);
  await waitFor(() => hand.subscriptions() === 1, { what: 'the page subscribed' });
  for (let i = 0; i < 4; i++) hand.update(1024);
  page.resume();
  await waitFor(() => page.seqs.length === 4, { timeoutMs: 60_000, what: 'the snapshot and 4 updates' });
  hand.update(16);
  await waitFor(() => page.seqs.length === 5, { what: 'the fifth update' });
  t.is(page.snapshots(), 1);
  t.deepEqual(page.seqs, [1, 2, 3, 4, 5]);
});

test('a page whose updates fall more than 1 MiB behind its snapshot is dropped', async (t) => {
  const { port, hand } = await bigDashboard(t);
  const page = slowPage(port);
  await waitFor(() => hand.subscriptions() === 1, { what: 'the page subscribed' });
  for (let i = 0; i < 8; i++) hand.update(MAX_BACKLOG_BYTES / 4);
  page.resume();
  await waitFor(page.closed, { timeoutMs: 20_000, what: 'the page dropped' });
  // Dropped with what was queued for it: the page reconnects for a fresh snapshot.
  t.true(page.seqs.length < 8, `got ${page.seqs.length} of the 8 updates`);
});

test('a page waiting for its next update is not an idle client: its stream outlives the idle timeout that closes a connection that moves nothing', async (t) => {
  const hand = handSource(100);
  const dashboard = await startDashboard({ listen: { host: '127.0.0.1', port: 0 }, name: 'quiet', source: hand.source, actions: noActions, token: null, idleTimeoutMs: 300 });
  t.teardown(() => dashboard.close());
  const port = (dashboard.address as { port: number }).port;
  const page = slowPage(port);
  page.resume();
  await waitFor(() => page.snapshots() === 1, { what: 'the snapshot' });
  // A connection that sends nothing is closed at the timeout: by then the page has waited as long.
  const idle = net.connect({ host: '127.0.0.1', port });
  idle.on('error', () => {});
  t.teardown(() => idle.destroy());
  await once(idle, 'close');
  hand.update(16);
  await waitFor(() => page.seqs.length === 1, { what: 'the update on the page that waited' });
  t.false(page.closed());
});

test('/events pipelined behind another request on one connection closes that connection: it cannot hold the places of the pages', async (t) => {
  const hand = handSource(100);
  const dashboard = await startDashboard({ listen: { host: '127.0.0.1', port: 0 }, name: 'piped', source: hand.source, actions: noActions, token: null });
  t.teardown(() => dashboard.close());
  const port = (dashboard.address as { port: number }).port;
  const greedy = net.connect({ host: '127.0.0.1', port });
  greedy.on('error', () => {});
  t.teardown(() => greedy.destroy());
  await once(greedy, 'connect');
  greedy.resume();
  const closed = once(greedy, 'close');
  greedy.write('GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'.repeat(8));
  await closed;
  // Its one live stream went with it; a page connects and gets its snapshot.
  const page = slowPage(port);
  page.resume();
  await waitFor(() => page.snapshots() === 1, { what: "the page's snapshot" });
  t.false(page.closed());
});

test('a capture whose page goes away is told so: its window ends early rather than run on for nobody', async (t) => {
  const asked: { kind: string; signal: AbortSignal | undefined }[] = [];
  const hold = (kind: string) => (_id: number, _durationMs: number, signal?: AbortSignal) => {
    asked.push({ kind, signal });
    return new Promise<never>(() => {});
  };
  const actions: DashboardActions = { ...noActions, profile: hold('profile'), loop: hold('loop') };
  const dashboard = await startDashboard({ listen: { host: '127.0.0.1', port: 0 }, name: 'gone', source: handSource(10).source, actions, token: 's3cret' });
  t.teardown(() => dashboard.close());
  const port = (dashboard.address as { port: number }).port;
  for (const kind of ['profile', 'loop']) {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.on('error', () => {});
    socket.write(`POST /api/${kind}/1?duration=30s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer s3cret\r\nContent-Length: 0\r\n\r\n`);
    const seen = await waitFor(() => asked.find((each) => each.kind === kind), { what: `the ${kind} asked for` });
    t.false(seen.signal!.aborted);
    socket.destroy();
    await waitFor(() => seen.signal!.aborted, { what: `the ${kind}'s signal aborted` });
  }
});

test('a stop ends each page\'s stream: a client following /events sees its end, not a broken transfer', async (t) => {
  const hand = handSource(10);
  const dashboard = await startDashboard({ listen: { host: '127.0.0.1', port: 0 }, name: 'ending', source: hand.source, actions: noActions, token: null });
  const port = (dashboard.address as { port: number }).port;
  const outcome = new Promise<string>((resolve) => {
    const request = http.get({ host: '127.0.0.1', port, path: '/events', agent: false }, (response) => {
      response.on('data', () => {});
      response.once('end', () => resolve(response.complete ? 'ended' : 'cut'));
      response.once('aborted', () => resolve('aborted'));
      response.once('error', (error) => resolve(`error: ${error.message}`));
    });
    request.on('error', (error) => resolve(`request error: ${error.message}`));
  });
  await waitFor(() => hand.subscriptions() === 1, { what: 'the page following' });
  await dashboard.close();
  t.is(await outcome, 'ended');
});

/** One request to 127.0.0.1:port: its status, Content-Type and body as text. */
test('a method a path does not take is 405, its Allow naming what it takes: POST on what is read (the page, /api/status, /events) was a 404 naming the actions', async (t) => {
  const dashboard = await startDashboard({ listen: { host: '127.0.0.1', port: 0 }, name: 'methods', source: handSource(10).source, actions: noActions, token: 's3cret' });
  t.teardown(() => dashboard.close());
  const port = (dashboard.address as { port: number }).port;
  const allowOf = (method: string, path: string) =>
    new Promise<[number | undefined, string | undefined]>((resolve, reject) =>
      http.request({ host: '127.0.0.1', port, method, path, agent: false }, (response) => {
        response.resume();
        resolve([response.statusCode, response.headers.allow]);
      }).on('error', reject).end(),
    );
  for (const path of ['/', '/app.js', '/api/status', '/events']) {
    t.deepEqual(await allowOf('POST', path), [405, 'GET, HEAD'], `POST ${path}`);
    t.deepEqual(await allowOf('DELETE', path), [405, 'GET, HEAD'], `DELETE ${path}`);
  }
  t.deepEqual(await allowOf('DELETE', '/api/reload'), [405, 'POST']);
  t.deepEqual(await allowOf('GET', '/api/reload'), [405, 'POST']);
  // An action that does not exist is still the 404 that names them.
  t.is((await ask(port, 'POST', '/api/nope', { Authorization: 'Bearer s3cret' })).status, 404);
});

function ask(port: number, method: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, type: response.headers['content-type'], body }));
    });
    request.on('error', reject);
    request.end();
  });
}

test('every error the dashboard answers is JSON {"error", "code"}: 400, 401, 403, 404, 405, 421, 500, 503', async (t) => {
  // The read-only 403, a GET of an unknown path (text), a method it does not take (text), the 421 (text)
  // and, with a token, the 401s, the cross-site 403 and a POST's 404 had no code.
  const actions: DashboardActions = { ...noActions, loop: () => Promise.reject(new Error('an error of no kind clusterd knows')) };
  const hand = handSource(10);
  const readOnly = await startDashboard({ listen: { host: '127.0.0.1', port: 0 }, name: 'errors', source: hand.source, actions, token: null });
  t.teardown(() => readOnly.close());
  const withToken = await startDashboard({ listen: { host: '127.0.0.1', port: 0 }, name: 'errors', source: handSource(10).source, actions, token: 's3cret' });
  t.teardown(() => withToken.close());
  const portOf = (dashboard: { address: unknown }): number => (dashboard.address as { port: number }).port;
  const auth = { Authorization: 'Bearer s3cret' };
  const cases: [number, string, string, Record<string, string>, number, string][] = [
    [portOf(readOnly), 'GET', '/nope', {}, 404, 'ERR_CLUSTERD_NOT_FOUND'],
    [portOf(readOnly), 'GET', '/api/reload', {}, 405, 'ERR_CLUSTERD_METHOD_NOT_ALLOWED'],
    [portOf(readOnly), 'PUT', '/api/status', {}, 405, 'ERR_CLUSTERD_METHOD_NOT_ALLOWED'],
    [portOf(readOnly), 'GET', '/api/status', { Host: 'evil.example' }, 421, 'ERR_CLUSTERD_MISDIRECTED'],
    [portOf(readOnly), 'POST', '/api/reload', { Host: 'evil.example' }, 421, 'ERR_CLUSTERD_MISDIRECTED'],
    [portOf(readOnly), 'POST', '/api/reload', {}, 403, 'ERR_CLUSTERD_FORBIDDEN'],
    [portOf(readOnly), 'POST', '/api/stop', {}, 404, 'ERR_CLUSTERD_NOT_FOUND'],
    [portOf(withToken), 'POST', '/api/restart/1', {}, 401, 'ERR_CLUSTERD_UNAUTHENTICATED'],
    [portOf(withToken), 'POST', '/api/restart/1', { Authorization: 'Bearer wrong' }, 401, 'ERR_CLUSTERD_UNAUTHENTICATED'],
    [portOf(withToken), 'POST', '/api/reload', { ...auth, 'Sec-Fetch-Site': 'cross-site' }, 403, 'ERR_CLUSTERD_FORBIDDEN'],
    [portOf(withToken), 'POST', '/api/nope', auth, 404, 'ERR_CLUSTERD_NOT_FOUND'],
    [portOf(withToken), 'POST', '/api/profile/1?duration=1h', auth, 400, 'ERR_CLUSTERD_USAGE'],
    [portOf(withToken), 'POST', '/api/loop/1', auth, 500, 'ERR_CLUSTERD_INTERNAL'],
  ];
  for (const [port, method, path, headers, status, code] of cases) {
    const what = `${method} ${path} ${JSON.stringify(headers)}`;
    const answer = await ask(port, method, path, headers);
    t.is(answer.status, status, what);
    t.is(answer.type, 'application/json', what);
    const body = JSON.parse(answer.body) as { error?: unknown; code?: unknown };
    t.is(typeof body.error, 'string', what);
    t.is(body.code, code, what);
  }
  // Every page's place taken: the next /events is 503.
  for (let i = 0; i < MAX_STREAMS; i++) slowPage(portOf(readOnly));
  await waitFor(() => hand.subscriptions() === MAX_STREAMS, { what: 'every place taken' });
  const refused = await ask(portOf(readOnly), 'GET', '/events');
  t.is(refused.status, 503);
  t.is((JSON.parse(refused.body) as { code?: unknown }).code, 'ERR_CLUSTERD_BUSY');
});

test('wrong dashboard tokens are budgeted per source, as --control\'s: past 20, its actions are refused unchecked (429, Retry-After)', async (t) => {
  // Checked as fast as a client sent them, a short token could be guessed.
  let restarts = 0;
  const actions: DashboardActions = {
    ...noActions,
    restart: async (id) => {
      restarts++;
      return { pid: 100 + id };
    },
  };
  // A clock that stands still: no refill comes between the guesses, however slow the machine.
  const wrongTokens = new WrongTokenBudget({ now: () => 0 });
  const dashboard = await startDashboard({ listen: { host: '127.0.0.1', port: 0 }, name: 'guessed', source: handSource(1000).source, actions, token: 's3cret', wrongTokens });
  t.teardown(() => dashboard.close());
  const { port } = dashboard.address as { port: number };
  const statuses: number[] = [];
  for (let guess = 0; guess < WRONG_TOKEN_BURST; guess++) statuses.push((await post(port, '/api/restart/1', { Authorization: `Bearer guess${guess}` })).status);
  t.deepEqual([...new Set(statuses)], [401]);
  const spent = await post(port, '/api/restart/1', { Authorization: 'Bearer guess-more' });
  t.is(spent.status, 429);
  t.regex(String(spent.headers['retry-after']), /^\d+$/);
  t.regex(String(spent.body.error), /too many wrong dashboard tokens from this address/);
  // While the budget is spent even the right token is not checked: a guess cannot be told from it.
  t.is((await post(port, '/api/restart/1', { Authorization: 'Bearer s3cret' })).status, 429);
  t.is(restarts, 0);
});
