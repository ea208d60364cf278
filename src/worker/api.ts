// The API an app may import from 'clusterd/worker'. None of it is needed to run under clusterd.
import { register, type ShutdownHandler } from './handlers.js';
import { parseWorkerIdEnv, WORKER_PID_ENV } from '../protocol.js';

export type { ShutdownHandler };

/** Under `--wait-ready`, tells the master this worker may receive traffic. */
export function ready(): void {
  process.send?.('ready');
}

/**
 * This worker's id (1..N, reused by its replacement), or undefined outside a clusterd worker: in a
 * process the app forks too (it inherits CLUSTERD_WORKER_ID, but not the runtime's mark of its pid).
 */
export function workerId(): number | undefined {
  return process.env[WORKER_PID_ENV] === String(process.pid) ? parseWorkerIdEnv(process.env.CLUSTERD_WORKER_ID) : undefined;
}

/**
 * Runs `handler` (sync or async) on every graceful stop of this worker (stop, reload, scale-down,
 * restart, memory limit), once its servers have stopped accepting. Handlers run one after another,
 * in the order they were added; the worker exits once they are done and its connections have
 * closed, or is killed at --grace. Returns a function that removes the handler. Outside clusterd
 * nothing calls it.
 */
export function onShutdown(handler: ShutdownHandler): () => void {
  if (typeof handler !== 'function') throw new TypeError(`Expected the onShutdown handler to be a function, got \`${typeof handler}\``);
  return register(handler);
}
