// Every worker leads a process group of its own; with the native helper it stays in the master's
// session (sessions cost speed under autogroup scheduling), without it it gets a session of its own
// (see ownSession in src/master/worker-fork.ts). On a terminal a Ctrl-C (SIGINT to the terminal's
// foreground process group) must reach the master alone, which drains them.
import test from 'ava';
import { execa, type ResultPromise } from 'execa';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
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

// A terminal whose hang-up the test chooses, with the master's own exit status: python3's pty.fork()
// makes the master a session leader on a new pseudo-terminal (its controlling terminal), relays what
// it shows to stdout, closes the terminal's other side on the line `hangup` (as a closed window or
// SSH session does), then reaps the master and prints `{"exit": N}` or `{"signal": N}` last.
const PTY = `
import json, os, pty, select, sys
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
print(json.dumps({'child': pid}), flush=True)
open_ = True
while open_:
    ready, _, _ = select.select([fd, sys.stdin], [], [])
    if sys.stdin in ready:
        if sys.stdin.readline().strip() == 'hangup':
            os.close(fd)
            open_ = False
    elif fd in ready:
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b''
        if not data:
            os.close(fd)
            open_ = False
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
_, status = os.waitpid(pid, 0)
print(json.dumps({'signal': os.WTERMSIG(status)} if os.WIFSIGNALED(status) else {'exit': os.WEXITSTATUS(status)}), flush=True)
`;

/** Runs `clusterd start ...args --log-format json` on a pty of its own (PTY above). */
function onPty(t: { teardown(fn: () => void): void }, args: string[], env: Record<string, string> = {}) {
  const runtime = mkdtempSync(join(tmpdir(), 'clusterd-test-'));
  t.teardown(() => rmSync(runtime, { recursive: true, force: true }));
  const child = execa('python3', ['-c', PTY, process.execPath, CLI, 'start', ...args, '--log-format', 'json'], {
    env: { ...env, CLUSTERD_RUNTIME_DIR: runtime },
    reject: false,
    buffer: false,
  });
  killOnTeardown(t, child);
  const lines: Record<string, unknown>[] = [];
  t.teardown(() => {
    const masterPid = lines.find((line) => typeof line.child === 'number')?.child as number | undefined;
    if (masterPid !== undefined && isRunning(masterPid)) process.kill(masterPid, 'SIGKILL');
  });
  createInterface({ input: child.stdout! }).on('line', (text) => {
    try {
      lines.push(JSON.parse(text.replace(/\r$/, '')) as Record<string, unknown>);
    } catch {
      // not one of the master's lines
    }
  });
  const hangUp = (): void => void child.stdin!.write('hangup\n');
  const exited = () => waitFor(() => lines.find((entry) => 'exit' in entry || 'signal' in entry), { what: 'the master reaped', timeoutMs: 60_000 });
  return { lines, hangUp, exited };
}

const hungUp = test.macro({
  async exec(t, withLogFile: boolean) {
    const dir = mkdtempSync(join(tmpdir(), 'clusterd-hangup-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const logFile = join(dir, 'master.log');
    const { lines, hangUp, exited } = onPty(t, [fixture('slow-routes.js'), '-i', '1', '--grace', '30s', ...(withLogFile ? ['--log-file', logFile] : [])], { SLOW_MS: '2000' });
    // With a log file the master's lines are there, not on the terminal.
    const logged = (): OutputLine[] =>
      withLogFile
        ? existsSync(logFile)
          ? readFileSync(logFile, 'utf8').split('\n').filter(Boolean).map((text) => JSON.parse(text) as OutputLine)
          : []
        : (lines as unknown as OutputLine[]);
    const seen = (what: string, match: (line: OutputLine) => boolean) => waitFor(() => logged().find(match), { what, timeoutMs: 20_000 });
    const ready = await seen('the ready event', (entry) => entry.event === 'ready');
    const port = Number((ready.addresses as string[])[0]!.split(':').pop());
    const slow = get(port, '/slow');
    await seen('the slow request in flight', (entry) => entry.stream === 'stdout' && String(entry.message).startsWith('slow request started'));
    hangUp();
    t.is((await slow).status, 200, 'the request in flight completes');
    // Node 20 set the terminal back at exit, failed with EIO and aborted: SIGSEGV (exit 139).
    t.deepEqual(await exited(), { exit: 0 });
    if (withLogFile) {
      // What the master flushes at exit reaches its own stdout and stderr, on the terminal that is gone.
      const lost = logged().filter((entry) => entry.event === 'output-lost');
      t.true(lost.length > 0 && lost.every((entry) => entry.code === 'EIO'), JSON.stringify(lost));
    }
  },
  title: (_title, withLogFile: boolean) =>
    withLogFile
      ? 'a terminal that hangs up with --log-file: EIO on the master\'s own stdout and stderr is logged (output-lost), not an internal error; exit 0'
      : 'a terminal that hangs up during a request: the request completes, and the master exits 0 rather than crash in Node\'s exit on a terminal that is gone',
});
test(hungUp, false);
test(hungUp, true);
