// Every worker leads a process group of its own; with the native helper it stays in the master's
// session (sessions cost speed under autogroup scheduling), without it it gets a session of its own
// (see ownSession in src/master/worker.ts). On a terminal a Ctrl-C (SIGINT to the terminal's
// foreground process group) must reach the master alone, which drains them.
import test from 'ava';
import { execa, type ResultPromise } from 'execa';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { CLI, fixture, get, isRunning, killOnTeardown, startCluster, waitFor, type OutputLine } from '../helpers/cluster.js';
import { nativeHelper } from '../../src/system/native.js';

/** The process group and session of a live process, from /proc/<pid>/stat. */
function ids(pid: number): { pgrp: number; session: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces): state ppid pgrp session ...
  const [, , pgrp, session] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { pgrp: Number(pgrp), session: Number(session) };
}

test(`each worker leads a process group of its own, ${nativeHelper() ? 'in the master\'s session (native helper built)' : 'in a session of its own (no native helper)'}`, async (t) => {
  const cluster = await startCluster(fixture('hello.js'), { instances: 2 });
  killOnTeardown(t, cluster.process);
  const master = ids(cluster.masterPid);
  for (const pid of cluster.pids) {
    t.is(ids(pid).pgrp, pid);
    if (nativeHelper()) t.is(ids(pid).session, master.session);
    else t.is(ids(pid).session, pid);
  }
  t.is(await cluster.stop(), 0);
});

interface OnTerminal {
  child: ResultPromise;
  runtime: string;
  lines: OutputLine[];
  line(what: string, match: (line: OutputLine) => boolean, timeoutMs?: number): Promise<OutputLine>;
}

/**
 * Runs `clusterd start ...args --log-format json` on a pseudo-terminal of its own, as its controlling
 * terminal: script(1) starts the command with $SHELL -c, and `exec` makes the master that shell's own
 * process, as in a terminal session. Without it, dash (Debian's sh) would be in the foreground process
 * group too, die of a SIGINT, and make script exit 130. What the terminal shows comes out of script's
 * stdout; pausing that stream stops the terminal being read.
 */
function onTerminal(t: { teardown(fn: () => void): void }, args: string[], env: Record<string, string> = {}): OnTerminal {
  const runtime = mkdtempSync(join(tmpdir(), 'clusterd-test-'));
  t.teardown(() => rmSync(runtime, { recursive: true, force: true }));
  const command = [process.execPath, CLI, 'start', ...args, '--log-format', 'json'];
  const child = execa('script', ['-qfec', `exec ${command.map((word) => `'${word}'`).join(' ')}`, '/dev/null'], {
    env: { ...env, CLUSTERD_RUNTIME_DIR: runtime, SHELL: '/bin/sh' },
    reject: false,
    buffer: false,
    stdin: 'ignore',
  });
  killOnTeardown(t, child);
  const lines: OutputLine[] = [];
  // A test that fails leaves no master behind: it outlives script(1) (one that did not stop on a
  // hang-up, or was stopped in a write to its terminal, stayed running after a failed run).
  t.teardown(() => {
    const masterPid = lines.find((line) => line.event === 'ready')?.masterPid;
    if (typeof masterPid === 'number' && isRunning(masterPid)) process.kill(masterPid, 'SIGKILL');
  });
  createInterface({ input: child.stdout! }).on('line', (text) => {
    try {
      lines.push(JSON.parse(text.replace(/\r$/, '')) as OutputLine);
    } catch {
      // the terminal echoes ^C and the like
    }
  });
  const line = (what: string, match: (line: OutputLine) => boolean, timeoutMs = 20_000) => waitFor(() => lines.find(match), { what, timeoutMs });
  return { child, runtime, lines, line };
}

test('on a terminal, Ctrl-C reaches the master alone, which drains the workers', async (t) => {
  const { child, line } = onTerminal(t, [fixture('slow-routes.js'), '-i', '2', '--grace', '30s'], { SLOW_MS: '1000' });
  const ready = await line('the ready event', (entry) => entry.event === 'ready');
  const masterPid = ready.masterPid as number;
  const port = Number((ready.addresses as string[])[0]!.split(':').pop());
  const pids = (ready.workers as { pid: number }[]).map((worker) => worker.pid);
  const master = ids(masterPid);
  for (const pid of pids) t.not(ids(pid).pgrp, master.pgrp);

  const slow = get(port, '/slow');
  await line('the slow request in flight', (entry) => entry.stream === 'stdout' && entry.message.startsWith('slow request started'));
  // What the terminal does on Ctrl-C: SIGINT to its foreground process group, the master's.
  process.kill(-master.pgrp, 'SIGINT');

  // A worker killed by the SIGINT would reset this request.
  const response = await slow;
  t.is(response.status, 200);
  t.is((await child).exitCode, 0);
  t.deepEqual(
    pids.filter((pid) => isRunning(pid)),
    [],
  );
});

test('a terminal nobody reads stops nothing: the master queues, then drops and counts, and the workers log on', async (t) => {
  // Node writes to a terminal synchronously: one not read (Ctrl-S, a stalled SSH session) stopped the
  // master in write(), and with it the control plane and the reading of the workers' pipes: a worker
  // froze at its next log line, and the watchdog killed it once the terminal was read again.
  const name = 'unread-terminal';
  const { child, runtime, line } = onTerminal(t, [fixture('floods-stdout.js'), '-i', '1', '--name', name]);
  const ready = await line('the ready event', (entry) => entry.event === 'ready');
  const port = Number((ready.addresses as string[])[0]!.split(':').pop());
  child.stdout!.pause();

  // 12 MB of lines, more than the master queues (8 MiB): the request is answered once all are written.
  const flood = await get(port, '/flood?lines=12000', { timeoutMs: 60_000 });
  t.is(flood.body, '12000', 'the worker wrote every line and answered');
  const status = await execa(process.execPath, [CLI, 'status', name], { env: { CLUSTERD_RUNTIME_DIR: runtime }, reject: false, timeout: 60_000 });
  t.is(status.exitCode, 0, status.stderr);

  child.stdout!.resume();
  const dropped = await line('the count of dropped lines', (entry) => entry.event === 'output-dropped', 60_000);
  t.true((dropped.dropped as number) > 0);
  t.is((await get(port, '/flood?lines=1')).body, '1');
  process.kill(ready.masterPid as number, 'SIGTERM');
  t.is((await child).exitCode, 0);
});

test('a terminal that hangs up stops the cluster; a SIGHUP from kill, with the terminal there, reloads it', async (t) => {
  const { child, line } = onTerminal(t, [fixture('hello.js'), '-i', '1']);
  const ready = await line('the ready event', (entry) => entry.event === 'ready');
  const masterPid = ready.masterPid as number;
  const workerPid = (ready.workers as { pid: number }[])[0]!.pid;
  process.kill(masterPid, 'SIGHUP');
  await line('the reload', (entry) => entry.event === 'operation' && entry.message === 'reload (1 at a time) done');
  t.false(isRunning(workerPid), 'the worker was replaced');

  // The terminal goes (its window closed): the kernel sends the master SIGHUP and takes the terminal away.
  child.kill('SIGKILL');
  await waitFor(() => !isRunning(masterPid), { what: 'the master to stop', timeoutMs: 30_000 });
  t.pass();
});
