// Loaded with `--import` into every worker before the app's entry: routes listen() to the
// master, reports readiness, drains on shutdown, and exits with the master.
import { writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as channel from './channel.js';
import { installClusterWorker } from './cluster-worker.js';
import { installInspectorOpener } from './inspector.js';
import { installListenHook } from './listen.js';
import { installServerTracking, traffic } from './servers.js';
import { installShutdown } from './shutdown.js';
import { createSampler } from '../loop/sampler.js';
import { startHeartbeat } from '../loop/heartbeat.js';
import { measureLoop } from '../loop/phases.js';
import { parseWorkerIdEnv, SETTINGS_ENV, WORKER_INSPECTOR_ARGS, WORKER_PID_ENV, type WorkerSettings } from '../protocol.js';
import { endOwnGroup } from '../system/group.js';
import { nativeHelper } from '../system/native.js';

/** Where this runtime lives (dist/, as a file path): its frames are not the app's. */
const RUNTIME_PREFIX = fileURLToPath(new URL('..', import.meta.url));

const OFF: WorkerSettings = { waitReady: false, statsIntervalMs: 0, heartbeatMs: 0 };

/**
 * The master's settings for this worker, from the environment (checked: an environment is anyone's
 * to change, and a bad value must not crash the app before it starts). Unset: everything off.
 */
function settings(): WorkerSettings {
  const raw = process.env[SETTINGS_ENV];
  delete process.env[SETTINGS_ENV];
  if (raw === undefined) return OFF;
  const parsed = parseSettings(raw);
  if (!parsed) process.emitWarning(`clusterd: ignoring a malformed ${SETTINGS_ENV}; loop stats and the watchdog are off`);
  return parsed ?? OFF;
}

function parseSettings(raw: string): WorkerSettings | null {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const { waitReady, statsIntervalMs, heartbeatMs } = value as Record<string, unknown>;
  const ms = (n: unknown): n is number => Number.isInteger(n) && (n as number) >= 0 && (n as number) <= 2 ** 31 - 1;
  if (typeof waitReady !== 'boolean' || !ms(statsIntervalMs) || !ms(heartbeatMs)) return null;
  return { waitReady, statsIntervalMs, heartbeatMs };
}

function start(): void {
  // Only in a worker the master forked. Outside a clusterd master (`node --import` by hand), and in a
  // process the app forks (fork() passes on this --import, with process.execArgv; the master's
  // settings were taken out of the environment it inherits), the runtime does nothing: that child
  // listens, talks on its channel and leaves its group as it would under node.
  if (!process.send || process.env[SETTINGS_ENV] === undefined) return;
  process.env[WORKER_PID_ENV] = String(process.pid);
  leadOwnGroup();
  const { waitReady, statsIntervalMs, heartbeatMs } = settings();
  if (heartbeatMs > 0) beat(heartbeatMs);
  blockingStdio();
  installListenHook();
  const id = parseWorkerIdEnv(process.env.CLUSTERD_WORKER_ID);
  if (id !== undefined) installClusterWorker(id);
  installServerTracking({
    // Called once (servers.ts settles once); under --wait-ready the app says it itself.
    onReady: () => {
      if (waitReady) return;
      channel.hold();
      channel.send({ cmd: 'NODE_clusterd:ready' });
    },
    // Every server the app listened on closed by its own hand, or one listens again: not ready, or ready again.
    onChange: (listening) => channel.send({ cmd: 'NODE_clusterd:listening', listening }),
  });
  // Under --wait-ready the app itself tells the master, PM2-style: process.send('ready').

  if (statsIntervalMs > 0) {
    createSampler({
      intervalMs: statsIntervalMs,
      traffic,
      onSample: (sample) => channel.send({ cmd: 'NODE_clusterd:stats', sample }),
    }).start();
  }

  // `clusterd loop`: one window at a time (the master asks for no more); one whose asker went away
  // ends early, so that its hooks do not run on for the rest of it.
  const windows = new Map<number, AbortController>();
  channel.on('NODE_clusterd:loop', ({ seq, durationMs }) => {
    const window = new AbortController();
    windows.set(seq, window);
    void measureLoop(durationMs, { ownPrefix: RUNTIME_PREFIX, signal: window.signal }).then((breakdown) => {
      windows.delete(seq);
      channel.send({ cmd: 'NODE_clusterd:loop-reply', seq, breakdown });
    });
  });
  channel.on('NODE_clusterd:loop-stop', ({ seq }) => windows.get(seq)?.abort());

  installShutdown();
  installInspectorOpener();
  forgetOwnFlags();

  // The master is gone (killed, even with SIGKILL): never outlive it, never hold its ports, and
  // take the app's children along. The app's own process.disconnect() closes the channel too, and
  // ends the worker the same way (without its channel the master cannot serve it): it says so first.
  announceOwnDisconnect();
  process.on('disconnect', () => {
    endOwnGroup();
    process.exit(0);
  });
  endWhenIdleBeforeReady(waitReady);
}

/**
 * The app's process.disconnect() tells the master before the channel closes: otherwise the worker's end
 * (the SIGKILL to its own group that follows any disconnect) reads as a kill from outside. Node writes
 * a message this small at once, so it is out before the close.
 */
function announceOwnDisconnect(): void {
  const disconnect = process.disconnect?.bind(process);
  if (!disconnect) return;
  process.disconnect = () => {
    channel.send({ cmd: 'NODE_clusterd:disconnecting' });
    disconnect();
  };
}

/**
 * An entry that finishes without starting a server (a script, a misnamed entry, a server started
 * only under `require.main === module`) would idle on the IPC channel until --listen-timeout, three
 * times over. Until it listens or says 'ready', the channel keeps nothing alive: the worker exits as
 * node would (code 0, or 13 for an unsettled top-level await), and says why on stderr, which the
 * master quotes in its failed-boot line.
 */
function endWhenIdleBeforeReady(waitReady: boolean): void {
  channel.releaseWhileBooting();
  let loopEnded = false;
  process.once('beforeExit', () => {
    loopEnded = true;
  });
  process.once('exit', () => {
    if (!loopEnded || !channel.isReleased()) return;
    const awaited = waitReady ? "called process.send('ready') (--wait-ready)" : 'listened on a port';
    try {
      writeSync(2, `clusterd: the app's entry finished with nothing left running, before it ${awaited}\n`);
    } catch {
      // stderr closed: the exit code is all there is.
    }
  });
}

/**
 * The flags the master added for this process (this runtime's --import, the inspector's port and
 * address line), out of process.execArgv, which the app's fork() passes on: its children start as
 * they would under node, with the app's own flags and loaders (tsx stays).
 */
function forgetOwnFlags(): void {
  const own = (specifier: string | undefined): boolean => {
    try {
      return specifier !== undefined && new URL(specifier).href === import.meta.url;
    } catch {
      return false;
    }
  };
  const kept: string[] = [];
  const argv = process.execArgv;
  for (let index = 0; index < argv.length; index++) {
    const arg = argv[index]!;
    if (arg === '--import' && own(argv[index + 1])) index++;
    else if (!(arg.startsWith('--import=') && own(arg.slice('--import='.length))) && !WORKER_INSPECTOR_ARGS.includes(arg)) kept.push(arg);
  }
  argv.splice(0, argv.length, ...kept);
}

/**
 * A process group of its own (the master forked this process in its own session when the native
 * helper is missing: it leads its group already), so that stopping it ends what the app started.
 */
function leadOwnGroup(): void {
  nativeHelper()?.setpgid(0, 0);
}

/**
 * Node writes to a pipe asynchronously once the pipe is full, so output still queued when the
 * app throws or calls process.exit() is lost (nodejs/node#6456), just when the last lines matter.
 * The master reads the worker's pipes all the time: blocking writes cost it nothing.
 */
function blockingStdio(): void {
  for (const stream of [process.stdout, process.stderr]) {
    (stream as unknown as { _handle?: { setBlocking?(blocking: boolean): number } })._handle?.setBlocking?.(true);
  }
}

/**
 * The heartbeat on fd 4, the pipe the master opened for it: the master watches the silences (the
 * watchdog, --report-blocked, the stall signal) and takes stacks through the inspector, so nothing of
 * this process's own is needed while its loop is blocked. Never fatal to the app: a worker started
 * without fd 4 runs without it.
 */
function beat(beatMs: number): void {
  try {
    startHeartbeat({ fd: 4, beatMs });
  } catch (error) {
    process.emitWarning(`clusterd: heartbeat unavailable (blocked-loop detection is off): ${(error as Error).message}`);
  }
}

start();
