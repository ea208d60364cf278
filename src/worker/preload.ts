// Loaded with `--import` into every worker before the app's entry: routes listen() to the
// master, reports readiness, drains on shutdown, and exits with the master.
import * as channel from './channel.js';
import { installListenHook } from './listen.js';
import { drainServers, installServerTracking, traffic } from './servers.js';
import { createSampler } from '../loop/sampler.js';
import { startWatchdog } from '../loop/watchdog.js';
import { SETTINGS_ENV, type WorkerSettings } from '../protocol.js';
import { endOwnGroup } from '../system/group.js';
import { nativeHelper } from '../system/native.js';

const OFF: WorkerSettings = { waitReady: false, statsIntervalMs: 0, watchdogMs: 0, stallMs: 0 };

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
  const { waitReady, statsIntervalMs, watchdogMs, stallMs } = value as Record<string, unknown>;
  const ms = (n: unknown): n is number => Number.isInteger(n) && (n as number) >= 0 && (n as number) <= 2 ** 31 - 1;
  if (typeof waitReady !== 'boolean' || !ms(statsIntervalMs) || !ms(watchdogMs) || !ms(stallMs)) return null;
  return { waitReady, statsIntervalMs, watchdogMs, stallMs };
}

function start(): void {
  if (!process.send) {
    // Run outside a clusterd master (for example `node --import` by hand): do nothing.
    return;
  }
  leadOwnGroup();
  const { waitReady, statsIntervalMs, watchdogMs, stallMs } = settings();
  startStackWatch(watchdogMs, stallMs);
  blockingStdio();
  let readySent = false;
  const sendReady = (): void => {
    if (readySent) return;
    readySent = true;
    channel.send({ cmd: 'clusterd:ready' });
  };

  installListenHook();
  installServerTracking(() => {
    if (!waitReady) sendReady();
  });
  // Under --wait-ready the app itself tells the master, PM2-style: process.send('ready').

  if (statsIntervalMs > 0) {
    createSampler({
      intervalMs: statsIntervalMs,
      traffic,
      onSample: (sample) => channel.send({ cmd: 'clusterd:stats', sample }),
    }).start();
  }

  channel.on('clusterd:shutdown', () => {
    void drainServers().then(() => process.exit(0));
  });

  // The master is gone (killed, even with SIGKILL): never outlive it, never hold its ports, and
  // take the app's children along.
  process.on('disconnect', () => {
    endOwnGroup();
    process.exit(0);
  });
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
 * The watchdog thread owns fd 4, the pipe the master opened for it: blocked-loop reports and
 * on-demand stacks reach the master without the main thread. Never fatal to the app: a worker
 * started without fd 4, or under --permission without --allow-worker, runs without it.
 */
function startStackWatch(thresholdMs: number, stallMs: number): void {
  try {
    startWatchdog({ fd: 4, thresholdMs, stallMs });
  } catch (error) {
    process.emitWarning(`clusterd: blocked-loop watchdog unavailable: ${(error as Error).message}`);
  }
}

start();
