// Issue 11: a fork() that fails is a failed boot of that worker's slot with the errno in the
// message, counted against --max-boot-failures, never a master crash ("input.on is not a
// function") and never a worker left behind. The failures are real: the master runs as an
// unprivileged user (setpriv), and once it is ready its own process or descriptor limit is lowered
// (prlimit --pid, run as that same user: lowering a process's limits needs no privilege then,
// where root may lack CAP_SYS_RESOURCE in a container). Then a worker is killed, and every
// attempt to fork its replacement fails. That user runs a copy of the built clusterd (and of node,
// when this one is where it cannot read it) in a temporary directory: the checkout may sit under
// a private home directory, as CI's does.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { setTimeout as pause } from 'node:timers/promises';
import { dirname, join } from 'node:path';
import { ExitCode } from '../../src/exit-codes.js';
import { CLI, fixture, isRunning, killOnTeardown, launch } from '../helpers/cluster.js';

const NOBODY = 65534;
const AS_NOBODY = ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--'];

/** The built clusterd, the app and (when needed) node, copied where uid NOBODY can read and run them. */
function copyForNobody(): { node: string; cli: string; app: string } {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-fork-copy-'));
  chmodSync(dir, 0o755);
  const root = dirname(dirname(CLI));
  for (const part of ['bin', 'dist', 'proto', 'package.json']) cpSync(join(root, part), join(dir, part), { recursive: true });
  cpSync(fixture('hello.js'), join(dir, 'hello.js'));
  let node = process.execPath;
  try {
    execFileSync(AS_NOBODY[0]!, [...AS_NOBODY.slice(1), node, '-e', '0'], { stdio: 'ignore' });
  } catch {
    node = join(dir, 'node');
    cpSync(process.execPath, node);
  }
  return { node, cli: join(dir, 'bin', 'clusterd.js'), app: join(dir, 'hello.js') };
}

if (process.getuid?.() !== 0) throw new Error('the fork-failure tests run as root (to become an unprivileged user): run the suite as root, as CI does');
const copy = copyForNobody();
test.after.always(() => rmSync(dirname(dirname(copy.cli)), { recursive: true, force: true }));
// Serial: each looks for processes of uid 65534 running the fixture, which the other would start.
const forkTest = test.serial;

/** Pids of processes of uid `uid` whose command line names `file`. */
function processesOf(uid: number, file: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = readFileSync(`/proc/${entry}/status`, 'utf8');
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (new RegExp(`^Uid:\\s+${uid}\\s`, 'm').test(status) && cmdline.includes(file)) pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

const forkFails = test.macro({
  async exec(t, limit: 'nproc' | 'nofile', errno: string) {
    const runtime = mkdtempSync(join(tmpdir(), 'clusterd-fork-'));
    chownSync(runtime, NOBODY, NOBODY);
    t.teardown(() => rmSync(runtime, { recursive: true, force: true }));
    const { app, node, cli } = copy;
    const master = launch(['start', app, '-i', '2', '--max-boot-failures', '3', '--log-format', 'json', '--name', 'forkfail'], {
      env: { CLUSTERD_RUNTIME_DIR: runtime },
      wrap: AS_NOBODY,
      node,
      cli,
    });
    killOnTeardown(t, master.process);
    const ready = await master.waitForLine((line) => line.event === 'ready');
    const workers = (ready.workers as { id: number; pid: number }[]).map((worker) => worker.pid);
    t.teardown(() => {
      for (const pid of processesOf(NOBODY, app)) process.kill(pid, 'SIGKILL');
    });

    const pid = master.process.pid!;
    // nproc counts every task of the user, the master's own threads too: 1 fails any fork. nofile
    // just under what the master holds: the pipes for a new worker cannot be opened (EMFILE leaves
    // Node's ChildProcess without stdio streams, which used to crash the master).
    const value = limit === 'nproc' ? 1 : readdirSync(`/proc/${pid}/fd`).length - 2;
    execFileSync(AS_NOBODY[0]!, [...AS_NOBODY.slice(1), 'prlimit', `--pid=${pid}`, `--${limit}=${value}:${value}`]);
    process.kill(workers[0]!, 'SIGKILL');

    // Worker 2 still serves: worker 1's failed forks are retried with the backoff, past
    // --max-boot-failures, and never stop the cluster.
    let failures = 0;
    const failedWhileServing = await master.waitForLine((line) => line.event === 'boot-failed' && ++failures === 4, 30_000);
    t.regex(failedWhileServing.message, new RegExp(`^worker 1 failed to boot: could not be started: spawn ${errno} \\(.+\\); retrying in \\d+\\.\\d s while 1 worker serves$`));
    t.true(isRunning(pid), 'the master runs on');
    t.true(isRunning(workers[1]!), 'worker 2 serves on');
    t.deepEqual(master.lines.filter((line) => line.event === 'fatal'), []);

    // Once no worker serves, the failed boots in a row stop the master with exit 3.
    process.kill(workers[1]!, 'SIGKILL');
    // Bounded: a master whose slot waits forever for a process that never started would hang here.
    const exitCode = await Promise.race([master.exited, pause(30_000, 'still running 30 s later', { ref: false })]);
    t.is(exitCode, ExitCode.BOOT_FAILED, master.stderr.join('\n'));
    const failed = master.lines.filter((line) => line.event === 'boot-failed');
    for (const line of failed) t.regex(line.message, new RegExp(`^worker [12] failed to boot: could not be started: spawn ${errno} \\(`));
    const fatal = master.lines.filter((line) => line.event === 'fatal');
    t.is(fatal.length, 1);
    t.regex(fatal[0]!.message, new RegExp(`^error: app failed to boot (once|\\d+ times in a row); last: worker [12] could not be started: spawn ${errno} \\(.+\\)$`));
    t.deepEqual(master.stderr, [], 'nothing on stderr: no crash, no stack');
    t.false(master.lines.some((line) => /input\.on|^\s+at /.test(line.message)));
    // Nothing of the app runs.
    t.deepEqual(processesOf(NOBODY, app), []);
  },
  title: (_title, limit: string, errno: string) => `fork failing with ${errno} (${limit} limit) is a failed boot with the errno, retried while another worker serves; with none serving the master stops with exit 3`,
});

forkTest(forkFails, 'nproc', 'EAGAIN');
forkTest(forkFails, 'nofile', 'EMFILE');
