// A worker's graceful stop, in the order the README's "Stopping" section gives: the master has
// already stopped routing to it; here its servers stop accepting, the app hears the kill signal
// and its onShutdown handlers run while the servers drain, and the worker exits once nothing is
// open (the master kills it at --grace otherwise).
//
// The kill signal reaches the app as an event (process.emit), never as a real signal: a real
// SIGTERM kills a process that does not listen for it, in the middle of the drain, and checking
// listeners first and then signalling leaves a window in which the app may remove its listener.
// Libraries hook the event: @godaddy/terminus, lightship, NestJS's enableShutdownHooks all call
// process.on('SIGTERM', ...), and get the same arguments as from a real one (name, number).
import { writeSync } from 'node:fs';
import { constants } from 'node:os';
import * as channel from './channel.js';
import { drainServers, stillOpen } from './drain.js';
import { runHandlers } from './handlers.js';
import type { StillOpen } from '../protocol.js';
import { describeOpen } from '../still-open.js';

/** How often a draining worker looks at what is open, and tells the master when it changed. */
const REPORT_MS = 100;

/**
 * The signals signal-exit listens for on Linux (its src/signals.ts). signal-exit (v3 and v4: a
 * dependency of execa, write-file-atomic, foreground-child and many more) listens for them in
 * every process that loads it, and when its listeners are the only ones it re-raises the signal
 * to die as the default would. Counted as the app's, an emitted SIGTERM would have it kill the
 * worker in the middle of the drain; so its listeners are not the app's.
 */
const SIGNAL_EXIT_SIGNALS = new Set([
  'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGALRM', 'SIGABRT', 'SIGVTALRM', 'SIGXCPU', 'SIGXFSZ', 'SIGUSR2',
  'SIGTRAP', 'SIGSYS', 'SIGQUIT', 'SIGIOT', 'SIGIO', 'SIGPOLL', 'SIGPWR', 'SIGSTKFLT',
]);

/** Handles the master's `shutdown` (once). */
export function installShutdown(): void {
  let started = false;
  channel.on('NODE_clusterd:shutdown', ({ signal }) => {
    if (started) return;
    started = true;
    void shutdown(signal);
  });
}

async function shutdown(signal: NodeJS.Signals): Promise<void> {
  // An app that listens for the signal expects to end the process itself (process.exit() in its
  // listener, or by closing what it holds): clusterd then does not exit for it once drained.
  const appExits = appListeners(signal) > 0;
  const drained = drainServers();
  sayWhatExitCuts();
  if (appExits) emitSignal(signal);
  const handlers = runHandlers();
  report(() => ({ ...stillOpen(), handlers: handlers.pending() }), appExits, appExits ? undefined : otherStopSignal(signal));
  const [, ok] = await Promise.all([drained, handlers.done]);
  if (!appExits) process.exit(ok ? 0 : 1);
  // The IPC channel is the last thing of clusterd's that keeps the process alive (its timers and
  // the heartbeat pipe are unref'd): the process ends when the app's own handles have closed.
  process.channel?.unref();
}

/**
 * An app that ends the process while its drain still runs (process.exit() in its signal listener or
 * an onShutdown handler, rather than in server.close()'s callback) cuts off what is in flight. That
 * is its choice, and its exit 0 a clean stop, but nothing else would tell: the stop or reload
 * succeeds and its clients see resets. So the worker says what was open, at exit, synchronously (the
 * loop turns no more); clusterd's own exit comes once the drain is done, with nothing to say.
 */
function sayWhatExitCuts(): void {
  process.once('exit', () => {
    // All but idle connections, which the drain closes anyway.
    const cut = describeOpen({ ...stillOpen(), idle: 0 });
    if (cut.length === 0) return;
    const them = cut.length === 1 && cut[0]!.startsWith('1 ') ? 'it' : 'them';
    try {
      writeSync(2, `clusterd: the app exited during its drain with ${cut.join(', ')}, and cut ${them} off (exit in server.close()'s callback to let the drain finish ${them})\n`);
    } catch {
      // stderr closed: nobody to tell.
    }
  });
}

/** The app's own listeners for `signal`: all of them but signal-exit's (v4 counts its instances on globalThis, v3 on process). */
function appListeners(signal: NodeJS.Signals): number {
  const all = process.listenerCount(signal);
  if (!SIGNAL_EXIT_SIGNALS.has(signal)) return all;
  const counted = (holder: unknown): number => {
    const count = (holder as { count?: unknown } | undefined)?.count;
    return typeof count === 'number' && count > 0 ? count : 0;
  };
  const v4 = (globalThis as Record<symbol, unknown>)[Symbol.for('signal-exit emitter')];
  const v3 = (process as unknown as { __signal_exit_emitter__?: unknown }).__signal_exit_emitter__;
  return Math.max(0, all - counted(v4) - counted(v3));
}

/**
 * The app's listeners run now, as they would for a real signal; one that throws does what a throw
 * in a real signal's listener does: an uncaught exception (the listeners after it do not run).
 */
function emitSignal(signal: NodeJS.Signals): void {
  try {
    (process.emit as (event: string, ...args: unknown[]) => boolean)(signal, signal, constants.signals[signal]);
  } catch (error) {
    process.nextTick(() => {
      throw error;
    });
  }
}

/** SIGINT or SIGTERM, whichever `signal` is not, when the app listens for it: its shutdown code waits for that one. */
function otherStopSignal(signal: NodeJS.Signals): 'SIGINT' | 'SIGTERM' | undefined {
  const other = signal === 'SIGTERM' ? 'SIGINT' : signal === 'SIGINT' ? 'SIGTERM' : undefined;
  return other && appListeners(other) > 0 ? other : undefined;
}

/** Sends what is open now, and again whenever it changes, until the process ends. */
function report(open: () => StillOpen, appExits: boolean, listensFor: 'SIGINT' | 'SIGTERM' | undefined): void {
  let last = '';
  const send = (): void => {
    const now = open();
    const key = JSON.stringify(now);
    if (key === last) return;
    last = key;
    channel.send({ cmd: 'NODE_clusterd:draining', open: now, appExits, ...(listensFor ? { listensFor } : {}) });
  };
  send();
  setInterval(send, REPORT_MS).unref();
}
