// Every process the benchmark starts goes through here, so that one exit hook can stop them all: each
// child leads its own process group (detached). On Ctrl-C or SIGTERM the leaders get SIGTERM first and
// a short grace to shut down (a clusterd master removes its control socket), then what is left of the
// groups is SIGKILLed; on a plain exit or a crash, where nothing can be awaited, SIGKILL at once.
import { spawn, execFileSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface Tracked {
  child: ChildProcess;
  pid: number;
  /** The last few KiB of stdout and stderr, to explain a failed start. */
  tail(): string;
  /** Resolves when the process has exited (immediately if it already has). */
  exited: Promise<void>;
  hasExited(): boolean;
}

const live = new Set<Tracked>();
const exitHooks: Array<() => void> = [];
const stoppedHooks: Array<() => void> = [];
/** Grace for what the benchmark started when it is interrupted: enough for a master to stop its workers. */
export const INTERRUPT_GRACE_MS = 3_000;
/** Set once the benchmark is stopping: nothing new may start behind the clean-up's back. */
let stopping = false;

/** Starts a process in its own group, remembered until it exits; `stdin: 'pipe'` to talk to it. */
export function spawnTracked(command: string, args: string[], { stdin = 'ignore', ...options }: SpawnOptions & { stdin?: 'ignore' | 'pipe' } = {}): Tracked {
  if (stopping) throw new Error('the benchmark is stopping');
  const child = spawn(command, args, { ...options, detached: true, stdio: [stdin, 'pipe', 'pipe'] });
  let buffer = '';
  const keep = (chunk: Buffer) => {
    buffer = (buffer + chunk.toString()).slice(-4096);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let done = false;
  const exited = new Promise<void>((resolve) => {
    child.once('close', () => {
      done = true;
      live.delete(tracked);
      resolve();
    });
    child.once('error', (error) => {
      buffer += `\n${error.message}`;
      done = true;
      live.delete(tracked);
      resolve();
    });
  });
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  const tracked: Tracked = { child, pid: child.pid, tail: () => buffer, exited, hasExited: () => done };
  live.add(tracked);
  return tracked;
}

/** SIGTERM the leader, wait up to `graceMs`, then SIGKILL whatever is left of its group. */
export async function stopTracked(tracked: Tracked, graceMs = 10_000): Promise<void> {
  if (!tracked.hasExited()) {
    signal(tracked.pid, 'SIGTERM');
    await Promise.race([tracked.exited, sleep(graceMs)]);
  }
  // Workers forked by the leader share its group; take any straggler down with it.
  signalGroup(tracked.pid, 'SIGKILL');
  await Promise.race([tracked.exited, sleep(2_000)]);
}

/** Registers a synchronous clean-up step run on exit, Ctrl-C or a crash, before the process groups are stopped. */
export function onExit(hook: () => void): void {
  exitHooks.push(hook);
}

/** Registers a synchronous clean-up step run on exit once the process groups are gone (removing folders they write to). */
export function onStopped(hook: () => void): void {
  stoppedHooks.push(hook);
}

/** SIGTERMs every tracked leader, waits up to `graceMs` for them to exit, then SIGKILLs what is left of their groups. */
export async function stopAllTracked(graceMs: number): Promise<void> {
  const all = [...live];
  for (const tracked of all) signal(tracked.pid, 'SIGTERM');
  await Promise.race([Promise.all(all.map((tracked) => tracked.exited)), sleep(graceMs)]);
  for (const tracked of all) signalGroup(tracked.pid, 'SIGKILL');
}

let installed = false;
/** Stops every tracked process group on Ctrl-C, SIGTERM or SIGHUP (gracefully), and on exit or a crash. */
export function installExitHandlers(): void {
  if (installed) return;
  installed = true;
  const runHooks = (hooks: Array<() => void>) => {
    for (const hook of hooks.splice(0)) {
      try {
        hook();
      } catch {
        // keep cleaning up
      }
    }
  };
  const cleanup = () => {
    stopping = true;
    runHooks(exitHooks);
    for (const tracked of live) signalGroup(tracked.pid, 'SIGKILL');
    live.clear();
    runHooks(stoppedHooks);
  };
  process.on('exit', cleanup);
  for (const name of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(name, () => {
      // A second signal while the first waits: no more grace.
      if (stopping) process.exit(130);
      stopping = true;
      console.error(`\nbench: ${name}, stopping everything it started`);
      // What was measured is written now, before the stopping systems fail the measurement under way.
      runHooks(exitHooks);
      void stopAllTracked(INTERRUPT_GRACE_MS).finally(() => process.exit(130));
    });
  }
  process.on('uncaughtException', (error) => {
    console.error(error);
    cleanup();
    process.exit(1);
  });
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}

function signalGroup(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(-pid, name);
  } catch {
    signal(pid, name);
  }
}

/** True while `pid` exists (and is not a zombie we could still reap). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

/** Polls until `condition` holds; throws `message` after `timeoutMs`. */
export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs: number, message: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(message);
    await sleep(50);
  }
}

/** True when something accepts TCP connections on 127.0.0.1:`port`. */
export async function portAccepts(port: number): Promise<boolean> {
  const socket = net.connect({ host: '127.0.0.1', port });
  try {
    await Promise.race([once(socket, 'connect'), sleep(1_000).then(() => Promise.reject(new Error('timeout')))]);
    return true;
  } catch {
    return false;
  } finally {
    socket.destroy();
  }
}

/** True when the benchmark itself could bind 127.0.0.1:`port`, i.e. nobody else holds it. */
export async function portFree(port: number): Promise<boolean> {
  const server = net.createServer();
  try {
    server.listen({ host: '127.0.0.1', port, exclusive: true });
    await once(server, 'listening');
    return true;
  } catch {
    return false;
  } finally {
    server.close();
  }
}

let clockTicks: number | undefined;
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** The kernel's CPU accounting step for one process (1 / CLK_TCK: 10 ms): cpuSeconds() moves by whole ticks. */
export function cpuTickSeconds(): number {
  return 1 / ticksPerSecond();
}

/** CPU seconds (user + system) `pid` has used so far, from /proc; undefined when unreadable. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which may itself hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return (utime + stime) / ticksPerSecond();
  } catch {
    return undefined;
  }
}

/** CPU seconds all cores have spent busy (not idle or waiting on I/O) since boot, from /proc/stat. */
export function machineBusySeconds(): number | undefined {
  try {
    const [, ...ticks] = (fs.readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).map(Number);
    // user nice system idle iowait irq softirq steal
    const busy = [0, 1, 2, 5, 6, 7].reduce((sum, index) => sum + (ticks[index] ?? 0), 0);
    return busy / ticksPerSecond();
  } catch {
    return undefined;
  }
}

/** CPU seconds of the benchmark itself plus its reaped children (wrk, once it has exited). */
export function selfAndChildrenSeconds(): number | undefined {
  try {
    const stat = fs.readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return [11, 12, 13, 14].reduce((sum, index) => sum + Number(fields[index]), 0) / ticksPerSecond();
  } catch {
    return undefined;
  }
}

/** Context switches of `pid` so far, from /proc/<pid>/status; undefined when unreadable. */
export function contextSwitches(pid: number): { voluntary: number; involuntary: number } | undefined {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const voluntary = /^voluntary_ctxt_switches:\s*(\d+)/m.exec(status)?.[1];
    const involuntary = /^nonvoluntary_ctxt_switches:\s*(\d+)/m.exec(status)?.[1];
    if (voluntary === undefined || involuntary === undefined) return undefined;
    return { voluntary: Number(voluntary), involuntary: Number(involuntary) };
  } catch {
    return undefined;
  }
}

/** The machine's TCP events that delay a new connection by a second or more (each SYN retransmit waits out the initial RTO). */
export interface TcpCounters {
  /** SYNs sent again: the first went unanswered (dropped at a full queue, or into a TIME_WAIT). */
  synRetrans: number;
  /** Connections a listening socket could not queue (its accept queue was full). */
  listenOverflows: number;
  /** SYNs a listening socket dropped, for any reason (overflows included). */
  listenDrops: number;
}

/** Reads TcpCounters from /proc/net/netstat's text (a "TcpExt:" header line, then its values). */
export function parseTcpCounters(netstat: string): TcpCounters | undefined {
  const lines = netstat.split('\n').filter((line) => line.startsWith('TcpExt:'));
  if (lines.length < 2) return undefined;
  const names = lines[0]!.trim().split(/\s+/).slice(1);
  const values = lines[1]!.trim().split(/\s+/).slice(1).map(Number);
  const read = (name: string): number | undefined => {
    const value = values[names.indexOf(name)];
    return names.includes(name) && Number.isSafeInteger(value) ? value : undefined;
  };
  const synRetrans = read('TCPSynRetrans');
  const listenOverflows = read('ListenOverflows');
  const listenDrops = read('ListenDrops');
  if (synRetrans === undefined || listenOverflows === undefined || listenDrops === undefined) return undefined;
  return { synRetrans, listenOverflows, listenDrops };
}

/** The machine's TcpCounters now; undefined off Linux. */
export function tcpCounters(): TcpCounters | undefined {
  try {
    return parseTcpCounters(fs.readFileSync('/proc/net/netstat', 'utf8'));
  } catch {
    return undefined;
  }
}
