// systemd socket activation with Debian's systemd-socket-activate: it listens, then starts the
// command with the socket as fd 3 (LISTEN_FDS=1, LISTEN_PID). The master adopts it; the app's
// listen() on that port gets it in every mode; and with the socket held by the process above the
// master, a restart of the master under constant load loses no request: they wait in the queue,
// whose length (the socket's backlog, systemd's Backlog=) the master and its workers leave alone.
import test, { type ExecutionContext } from 'ava';
import { execa, type ResultPromise } from 'execa';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { adoptActivatedSockets, listeningSocket, matches, unixSocketName } from '../../src/master/activation.js';
import { nativeHelper } from '../../src/system/native.js';
import { CLI, fixture, waitFor } from '../helpers/cluster.js';
import { freePort, getJson, loadLoop, requestJson, untilEveryWorker } from '../helpers/requests.js';


interface HolderLine {
  event?: string;
  masterPid?: number;
  message?: string;
  addresses?: string[];
  workers?: { pid: number }[];
}

/**
 * Runs systemd-socket-activate with `args` (it listens, then starts the command on the first
 * connection) and resolves once it listens, with the masters' JSON lines as they come. On teardown
 * it and every master it started are killed (its SIGKILL does not reach them).
 */
async function socketActivate(t: ExecutionContext, args: string[]): Promise<{ holder: ResultPromise; lines: HolderLine[] }> {
  // The masters register their names in a runtime directory of this test's own, not the shared
  // default one, where another run's cluster of the same name would be in the way. (-E: what the
  // command started gets in its environment, whatever systemd-socket-activate passes on of its own.)
  const runtime = mkdtempSync(join(tmpdir(), 'clusterd-activation-'));
  t.teardown(() => rmSync(runtime, { recursive: true, force: true }));
  const holder = execa('systemd-socket-activate', ['-E', `CLUSTERD_RUNTIME_DIR=${runtime}`, ...args], { reject: false, buffer: false, env: { PATH: process.env.PATH } });
  t.teardown(() => holder.kill('SIGKILL'));
  const lines: HolderLine[] = [];
  t.teardown(() => {
    for (const line of lines) {
      if (line.event !== 'ready' || !line.masterPid) continue;
      try {
        process.kill(line.masterPid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  });
  createInterface({ input: holder.stdout! }).on('line', (text) => {
    try {
      lines.push(JSON.parse(text) as HolderLine);
    } catch {
      lines.push({ message: text });
    }
  });
  // It says when it listens, on stderr.
  const stderr: string[] = [];
  createInterface({ input: holder.stderr! }).on('line', (text) => stderr.push(text));
  await waitFor(() => stderr.some((line) => line.startsWith('Listening on')), { what: `systemd-socket-activate listening (${stderr.join(' | ')})` });
  return { holder, lines };
}

test('the variables are read only for this process, and removed once read', (t) => {
  const other = { LISTEN_PID: '1', LISTEN_FDS: '1' };
  t.is(adoptActivatedSockets(other, 2), null, 'another process\'s sockets');
  t.deepEqual(other, {}, 'removed: the workers must not take them for theirs');
  t.is(adoptActivatedSockets({}, 2), null);
  t.deepEqual(adoptActivatedSockets({ LISTEN_PID: '2', LISTEN_FDS: 'lots' }, 2), { sockets: [], skipped: ['LISTEN_FDS=lots is not a count from 1 to 256: no socket adopted'] });
  const address = (host: string) => ({ address: host, family: 'IPv4', port: 8080 });
  t.true(matches({ address: null, port: 8080 }, address('::')));
  t.true(matches({ address: '0.0.0.0', port: 8080 }, address('::')));
  t.true(matches({ address: '127.0.0.1', port: 8080 }, address('127.0.0.1')));
  t.false(matches({ address: '127.0.0.1', port: 8081 }, address('127.0.0.1')));
  t.false(matches({ address: '10.0.0.1', port: 8080 }, address('127.0.0.1')));
  t.false(matches({ address: null, port: 0 }, { address: '::', family: 'IPv6', port: 0 }));
  const unix = { address: '/run/app.sock', family: 'unix', port: -1 };
  t.true(matches({ address: '/run/app.sock', port: -1 }, unix));
  t.false(matches({ address: '/run/other.sock', port: -1 }, unix));
  t.false(matches({ address: null, port: 8080 }, unix));
});

test('a unix socket is found by its path (abstract ones too), a TCP one is not', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-unix-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const fdOf = (server: Server): number => (server as unknown as { _handle: { fd: number } })._handle.fd;
  const servers = ['with space.sock', '\0clusterd-test-abstract'].map((name) => createServer().listen(name.startsWith('\0') ? `${name}-${process.pid}` : join(dir, name)));
  servers.push(createServer().listen(0, '127.0.0.1'));
  t.teardown(() => servers.forEach((server) => server.close()));
  await Promise.all(servers.map((server) => once(server, 'listening')));
  t.deepEqual(unixSocketName(fdOf(servers[0]!)), { address: join(dir, 'with space.sock'), family: 'unix', port: -1 });
  t.deepEqual(unixSocketName(fdOf(servers[1]!)), { address: `\0clusterd-test-abstract-${process.pid}`, family: 'unix', port: -1 });
  t.is(unixSocketName(fdOf(servers[2]!)), null);
});

test('a listening socket is told from every other descriptor without touching it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-unix-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const fdOf = (handle: unknown): number => (handle as { _handle: { fd: number } })._handle.fd;
  const tcp = createServer().listen(0, '127.0.0.1');
  const unix = createServer().listen(join(dir, 'a.sock'));
  t.teardown(() => [tcp, unix].forEach((server) => server.close()));
  await Promise.all([once(tcp, 'listening'), once(unix, 'listening')]);
  const client = connect((tcp.address() as { port: number }).port, '127.0.0.1');
  t.teardown(() => client.destroy());
  await once(client, 'connect');
  writeFileSync(join(dir, 'a.txt'), 'x');
  const file = openSync(join(dir, 'a.txt'), 'r');
  t.teardown(() => closeSync(file));
  t.true(listeningSocket(fdOf(tcp)));
  t.true(listeningSocket(fdOf(unix)));
  t.false(listeningSocket(fdOf(client)), 'a connected TCP socket');
  t.is(listeningSocket(file), null, 'a file');
  t.is(listeningSocket(2 ** 20), null, 'no such descriptor');
  // A connected unix socket: this process's own IPC channel, as under ava.
  const channel = (process as unknown as { channel?: { fd: number } }).channel?.fd;
  if (typeof channel === 'number') t.false(listeningSocket(channel), 'the IPC channel');
});

test('LISTEN_FDS counting more than was passed: the master leaves its own descriptors alone, says so, and runs', async (t) => {
  // No socket is passed at all: fds 3.. are the master's own (libuv's epoll and signal pipe), which
  // it used to wrap and close, and abort (SIGABRT).
  const master = `LISTEN_PID=$$ LISTEN_FDS=3 exec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} start ${JSON.stringify(fixture('hello.js'))} -i 1 --log-format json --name activation-miscounted`;
  const child = execa('sh', ['-c', master], { env: { PORT: '0' }, reject: false, stdin: 'ignore', forceKillAfterDelay: 60_000 });
  t.teardown(() => child.kill('SIGKILL'));
  const lines: HolderLine[] = [];
  const ready = new Promise<HolderLine>((resolve) => {
    createInterface({ input: child.stdout! }).on('line', (text) => {
      const line = JSON.parse(text) as HolderLine;
      lines.push(line);
      if (line.event === 'ready') resolve(line);
    });
  });
  const outcome = await Promise.race([ready, child.then((result) => result)]);
  t.is((outcome as HolderLine).event, 'ready', `the master ended first: ${JSON.stringify(outcome)}`);
  const skipped = lines.filter((line) => line.event === 'socket-activation').map((line) => line.message).join('\n');
  t.regex(skipped, /fd 3 \(unknown\): not a socket, left alone/);
  const port = Number(String((outcome as HolderLine).addresses?.[0]).split(':')[1]);
  t.truthy((await getJson(port)).pid);
  process.kill((outcome as HolderLine).masterPid!, 'SIGTERM');
  t.is((await child).exitCode, 0);
});

test.serial('a unix socket from systemd: every worker\'s listen(path) gets it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-unix-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const socketPath = join(dir, 'app.sock');
  const master = `LISTEN_PID=$$ exec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} start ${JSON.stringify(fixture('unix-shared.js'))} -i 2 --log-format json --name activated-unix -- ${JSON.stringify(socketPath)}`;
  const { holder, lines } = await socketActivate(t, ['-l', socketPath, '-E', 'LISTEN_FDNAMES=web', 'sh', '-c', master]);
  // The first connection starts the master, and waits in the socket's queue until a worker takes it.
  const first = await requestJson<{ pid: number; address: string }>({ socketPath });
  t.is(first.address, socketPath);
  const ready = await waitFor(() => lines.find((line) => line.event === 'ready'), { what: 'the master ready' });
  t.deepEqual(ready.addresses, [socketPath]);
  t.regex(lines.find((line) => line.event === 'socket-activation')?.message ?? '', new RegExp(`sockets from systemd: web ${socketPath.replace(/[.]/g, '\\.')} \\(fd 3\\)`));
  const workers = ready.workers?.map((worker) => worker.pid) ?? [];
  t.is(workers.length, 2);
  await untilEveryWorker(() => requestJson({ socketPath }), workers, { what: 'both workers serving the inherited socket' });
  process.kill(ready.masterPid!, 'SIGTERM');
  await holder;
});

for (const balance of ['fair', 'rr', 'shared']) {
  test.serial(`--balance ${balance}: two workers serve the inherited socket; a master restart under load loses no request`, async (t) => {
    const port = await freePort();
    // The shell holds fd 3 between the two masters, as systemd does; each master is started by a
    // shell that sets LISTEN_PID to its own pid and execs node (the pid stays).
    const master = `LISTEN_PID=$$ exec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} start ${JSON.stringify(fixture('hello.js'))} -i 2 --balance ${balance} --log-format json --name activated-${balance}`;
    // It starts the command on the first connection, which waits for it.
    const { holder, lines } = await socketActivate(t, ['-l', `127.0.0.1:${port}`, '-E', `PORT=${port}`, '-E', 'LISTEN_FDNAMES=http', 'sh', '-c', `sh -c '${master}'; sh -c '${master}'`]);
    const first = await getJson(port);
    t.true(first.pid > 0);
    const ready = await waitFor(() => lines.find((line) => line.event === 'ready'), { what: 'the first master ready' });
    t.regex(lines.find((line) => line.event === 'socket-activation')?.message ?? '', /sockets from systemd: http 127\.0\.0\.1:\d+ \(fd 3\)/);
    const load = loadLoop(port, { concurrency: 2 });
    t.teardown(() => load.stop());
    await waitFor(() => load.stats.byPid.size >= 2 && load.stats.ok >= 50, { timeoutMs: 20_000, what: 'both workers serving' });
    const before = new Set(load.stats.byPid.keys());

    process.kill(ready.masterPid!, 'SIGTERM');
    await waitFor(() => lines.filter((line) => line.event === 'ready').length === 2, { timeoutMs: 30_000, what: 'the second master ready' });
    await waitFor(() => [...load.stats.byPid.keys()].filter((pid) => !before.has(pid)).length >= 2, { timeoutMs: 20_000, what: 'the new workers serving' });
    const stats = await load.stop();
    t.log(`${stats.ok} requests, ${stats.failed} failed, by pid ${JSON.stringify([...stats.byPid])}`);
    t.is(stats.failed, 0, stats.errors.slice(0, 3).join('; '));
    const second = lines.filter((line) => line.event === 'ready')[1]!;
    process.kill(second.masterPid!, 'SIGTERM');
    await holder;
  });
}

/** The backlog the kernel reports for the one socket listening on 127.0.0.1:`port` (ss's Send-Q, read through sock_diag). */
async function backlogOf(port: number): Promise<number> {
  const { stdout } = await execa('ss', ['-H', '-l', '-t', '-n', `src 127.0.0.1 and sport = :${port}`]);
  const rows = stdout.trim().split('\n').filter(Boolean);
  if (rows.length !== 1) throw new Error(`ss: ${rows.length} listening sockets on 127.0.0.1:${port}: ${stdout}`);
  // State Recv-Q Send-Q Local-Address:Port Peer-Address:Port
  return Number(rows[0]!.trim().split(/\s+/)[2]);
}

for (const balance of ['fair', 'rr', 'shared']) {
  test.serial(`--balance ${balance}: the inherited socket keeps its backlog, for systemd's copy too once the master has exited`, async (t) => {
    // Listened on with a backlog of 1000 (a .socket unit's Backlog=), then passed as fd 3 to a shell
    // that holds it while the master runs and after, as systemd does, until its stdin ends.
    const socket = createServer().listen({ port: 0, host: '127.0.0.1', backlog: 1000 });
    await once(socket, 'listening');
    const { port } = socket.address() as { port: number };
    t.is(await backlogOf(port), 1000);
    const runtime = mkdtempSync(join(tmpdir(), 'clusterd-activation-'));
    t.teardown(() => rmSync(runtime, { recursive: true, force: true }));
    const master = `LISTEN_PID=$$ LISTEN_FDS=1 exec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} start ${JSON.stringify(fixture('hello.js'))} -i 2 --balance ${balance} --log-format json --name backlog-${balance}`;
    const fd = (socket as unknown as { _handle: { fd: number } })._handle.fd;
    // (node's spawn: execa's types take no descriptor past stderr.)
    const holder = spawn('sh', ['-c', `sh -c '${master}'; echo '{"event":"master-exited"}'; read _ || :`], {
      stdio: ['pipe', 'pipe', 'inherit', fd],
      env: { ...process.env, PORT: String(port), CLUSTERD_RUNTIME_DIR: runtime },
    });
    const exited = once(holder, 'exit');
    t.teardown(() => holder.kill('SIGKILL'));
    // This process's copy closed: the workers alone take connections.
    socket.close();
    const lines: HolderLine[] = [];
    createInterface({ input: holder.stdout! }).on('line', (text) => lines.push(JSON.parse(text) as HolderLine));
    const ready = await waitFor(() => lines.find((line) => line.event === 'ready'), { timeoutMs: 20_000, what: 'the master ready' });
    t.teardown(() => {
      try {
        process.kill(ready.masterPid!, 'SIGKILL');
      } catch {
        // Already gone.
      }
    });
    t.true((await getJson(port)).pid > 0);
    // Its own where the native helper reads it back, else the most the kernel allows: never lower.
    const exact = typeof nativeHelper()?.listenBacklog === 'function';
    const running = await backlogOf(port);
    if (exact) t.is(running, 1000, 'while the cluster runs');
    else t.true(running >= 1000, `while the cluster runs: ${running}`);

    process.kill(ready.masterPid!, 'SIGTERM');
    await waitFor(() => lines.some((line) => line.event === 'master-exited'), { timeoutMs: 20_000, what: 'the master exited' });
    t.is(await backlogOf(port), running, 'held by the shell once the master has exited');
    holder.stdin!.end();
    t.deepEqual(await exited, [0, null]);
  });
}

test.serial('a socket from systemd that the app does not listen on: one warning once ready, naming it and what the app listens on instead; kept, a reload that listens there takes it', async (t) => {
  // ListenStream=PORT while the app listens on another port: the commonest unit mistake. Its
  // clients were left waiting in the socket's queue, with nothing said.
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-unused-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const [unused, other] = [await freePort(), await freePort()];
  // The app listens on the port in a file: the fix a reload brings.
  const portFile = join(dir, 'port');
  writeFileSync(portFile, String(other));
  writeFileSync(
    join(dir, 'app.mjs'),
    "import http from 'node:http';\nimport { readFileSync } from 'node:fs';\n" +
      "http.createServer((request, response) => response.end(JSON.stringify({ pid: process.pid }))).listen(Number(readFileSync(process.env.PORT_FILE, 'utf8')), '127.0.0.1');\n",
  );
  const master = `LISTEN_PID=$$ exec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} start ${JSON.stringify(join(dir, 'app.mjs'))} -i 2 --log-format json --name activation-unused`;
  const { holder, lines } = await socketActivate(t, ['-l', `127.0.0.1:${unused}`, '-E', `PORT_FILE=${portFile}`, '-E', 'LISTEN_FDNAMES=web', 'sh', '-c', master]);
  // The first connection starts the master, and waits in the queue of the socket nobody accepts on.
  const waiting = connect(unused, '127.0.0.1');
  const answer: Buffer[] = [];
  waiting.on('data', (chunk: Buffer) => answer.push(chunk));
  waiting.on('error', () => {});
  t.teardown(() => waiting.destroy());
  await once(waiting, 'connect');
  waiting.write('GET / HTTP/1.0\r\n\r\n');
  const ready = await waitFor(() => lines.find((line) => line.event === 'ready'), { timeoutMs: 20_000, what: 'the master ready' });
  t.deepEqual(ready.addresses, [`127.0.0.1:${other}`]);
  const warning = (await waitFor(() => lines.find((line) => line.event === 'activation-unused'), { what: 'the activation-unused warning' })) as HolderLine & { fd?: number; address?: string; listening?: string[] };
  t.like(warning, { fd: 3, address: `127.0.0.1:${unused}`, listening: [`127.0.0.1:${other}`] });
  t.regex(warning.message ?? '', new RegExp(`socket from systemd 127\\.0\\.0\\.1:${unused} \\(fd 3, web\\) is not listened on \\(the app listens on 127\\.0\\.0\\.1:${other}\\)`));
  t.true((await getJson(other)).pid > 0);
  t.is(answer.length, 0, 'the client waits');

  // Fixed and reloaded: the new workers' listen() takes the socket, and the client that waited is answered.
  writeFileSync(portFile, String(unused));
  process.kill(ready.masterPid!, 'SIGHUP');
  await once(waiting, 'end');
  t.regex(Buffer.concat(answer).toString(), /^HTTP\/1\.1 200 OK[^]*"pid":\d+/);
  t.true((await getJson(unused)).pid > 0);
  process.kill(ready.masterPid!, 'SIGTERM');
  await holder;
  t.is(lines.filter((line) => line.event === 'activation-unused').length, 1, 'said once');
});

/** Starts `app` under socket activation on a fresh port, where its listen fails: the port, and the master's fatal line. */
async function failedActivatedListen(t: ExecutionContext, app: string, args: string): Promise<{ port: number; fatal: string | undefined }> {
  const port = await freePort();
  const master = `LISTEN_PID=$$ exec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} start ${JSON.stringify(fixture(app))} ${args} --log-format json`;
  const { holder, lines } = await socketActivate(t, ['-l', String(port), '-E', `PORT=${port}`, 'sh', '-c', master]);
  // The first connection starts the master; it is reset when the master exits.
  const first = connect(port, '127.0.0.1');
  first.on('error', () => {});
  t.teardown(() => first.destroy());
  const result = await holder;
  t.is(result.exitCode, 4);
  return { port, fatal: lines.find((line) => line.event === 'fatal')?.message };
}

test.serial('a listen() on another address of the port systemd holds: the failure names the socket from systemd, and its address', async (t) => {
  // `-l PORT` listens on [::]:PORT (dual-stack); the app's 127.0.0.1:PORT does not match it, and
  // binding a socket of its own finds the port held, by the master, through the inherited socket.
  const { port, fatal } = await failedActivatedListen(t, 'hello.js', '-i 2 --name activation-conflict');
  t.is(
    fatal,
    `error: cannot listen on port ${port} (127.0.0.1:${port}): address already in use (EADDRINUSE): it is the socket from systemd ([::]:${port}), which the master holds; listen on that same address (or on none: host omitted)`,
  );
});

test.serial('an app listening with exclusive: true on the port systemd holds: the failure names exclusive first, then the address', async (t) => {
  // The worker binds a socket of its own with exclusive: true, whatever the address; the line said
  // to listen on the same address (or on none), which the app did not need and which would not have helped.
  const { port, fatal } = await failedActivatedListen(t, 'exclusive-port.js', '-i 1 --name activation-exclusive');
  t.is(
    fatal,
    `error: cannot listen on port ${port} (127.0.0.1:${port}): address already in use (EADDRINUSE): it is the socket from systemd ([::]:${port}), which the master holds; the app listens with exclusive: true, which binds a socket of its own: leave exclusive out, and listen on that same address (or on none: host omitted)`,
  );
});
