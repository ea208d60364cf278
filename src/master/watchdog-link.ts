// The master's end of a worker's watchdog pipe (the protocol is documented in src/loop/watchdog.ts).
//
// Entry point, for WorkerProcess (src/master/worker.ts): fork with stdio
// ['ignore', 'pipe', 'pipe', 'ipc', 'pipe'], then
//
//     const link = new WatchdogLink(child.stdio[4] as Duplex);
//     link.on('blocked', ({ blockedMs, stack }) => { log(formatStack(stack)); keep it for status; replace });
//     const { state, stack } = await link.requestStack(2000);          // `clusterd stack`
//
// The link closes by itself (pending requests rejected, 'close' emitted) when the pipe ends, that is when
// the worker has exited: the worker's fd 4 is close-on-exec, so no process it spawns holds the pipe open
// (checked on Linux, Node 20 and 24). close() is for giving up on a live worker's watchdog; called on the
// child's 'exit', it could drop a report the worker wrote just before dying and the link has not read.
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { ClusterdError } from '../errors.js';
import { lineSplitter, parseFrames, parseMessage, type LoopState, type StackFrame } from '../loop/watchdog.js';

/** A worker's loop went without a heartbeat for longer than its threshold: its stack at that moment. */
export interface BlockedReport {
  blockedMs: number;
  /** Innermost frame first; empty (with `error`) when the thread was inside a native call. */
  stack: StackFrame[];
  error?: string;
}

/** The answer to requestStack(). */
export interface StackReply {
  state: LoopState;
  stack: StackFrame[];
  /** With state `blocked`: how long the loop had gone without a heartbeat. */
  blockedMs?: number;
  /** Why the stack is empty though the state is not idle. */
  error?: string;
}

export interface WatchdogReady {
  pid: number;
  thresholdMs: number;
}

const DEFAULT_REQUEST_TIMEOUT_MS = 3000;

interface Pending {
  resolve: (reply: StackReply) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * Events: 'ready' (WatchdogReady) once the worker's watchdog thread listens; 'blocked' (BlockedReport)
 * once per blocked episode; 'warning' (string) for an error the thread reports or a line that is not
 * protocol; 'close' once, when the pipe is gone. Never emits 'error'.
 */
export class WatchdogLink extends EventEmitter {
  readonly #stream: Duplex;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed = false;

  constructor(stream: Duplex) {
    super();
    this.#stream = stream;
    stream.setEncoding('utf8');
    stream.on('data', lineSplitter((line) => this.#onLine(line), { onOverflow: () => this.#warn('watchdog: line too long, dropped') }));
    // EPIPE / ECONNRESET when the worker dies: 'close' follows.
    stream.on('error', () => {});
    stream.once('close', () => this.close());
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Asks the worker's watchdog thread for the main thread's current stack, whether it is idle, busy or
   * blocked. Rejects with ERR_CLUSTERD_WATCHDOG_TIMEOUT after timeoutMs, ERR_CLUSTERD_WATCHDOG_CLOSED when the
   * link is or becomes closed, ERR_CLUSTERD_WATCHDOG when the thread reports a failure.
   */
  requestStack(timeoutMs = DEFAULT_REQUEST_TIMEOUT_MS): Promise<StackReply> {
    if (this.#closed) return Promise.reject(closedError());
    const id = this.#nextId++;
    return new Promise<StackReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new ClusterdError('ERR_CLUSTERD_WATCHDOG_TIMEOUT', `The worker's watchdog did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      this.#stream.write(`${JSON.stringify({ type: 'stack', id })}\n`);
    });
  }

  /** Stops reading, rejects every pending request and emits 'close'. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const [id, pending] of this.#pending) {
      this.#pending.delete(id);
      clearTimeout(pending.timer);
      pending.reject(closedError());
    }
    this.#stream.destroy();
    this.emit('close');
  }

  #onLine(line: string): void {
    if (line.trim() === '') return;
    const message = parseMessage(line);
    const stack = parseFrames(message?.stack);
    switch (message?.type) {
      case 'ready':
        if (typeof message.pid === 'number' && typeof message.thresholdMs === 'number') {
          this.emit('ready', { pid: message.pid, thresholdMs: message.thresholdMs } satisfies WatchdogReady);
          return;
        }
        break;
      case 'stall':
        this.emit('stall', Number(message.silentMs) || 0);
        return;
      case 'resume':
        this.emit('resume');
        return;
      case 'blocked':
        if (typeof message.blockedMs === 'number' && stack !== null) {
          this.emit('blocked', { blockedMs: message.blockedMs, stack, ...optionalError(message.error) } satisfies BlockedReport);
          return;
        }
        break;
      case 'stack':
        if (typeof message.id === 'number' && isLoopState(message.state) && stack !== null) {
          this.#settle(message.id, (pending) => pending.resolve({
            state: message.state as LoopState,
            stack,
            ...(typeof message.blockedMs === 'number' ? { blockedMs: message.blockedMs } : {}),
            ...optionalError(message.error),
          }));
          return;
        }
        break;
      case 'error':
        if (typeof message.message === 'string') {
          if (typeof message.id === 'number' && this.#pending.has(message.id)) {
            const text = message.message;
            this.#settle(message.id, (pending) => pending.reject(new ClusterdError('ERR_CLUSTERD_WATCHDOG', text)));
          } else {
            this.#warn(message.message);
          }
          return;
        }
        break;
    }
    this.#warn(`watchdog: unexpected line ${JSON.stringify(line.slice(0, 200))}`);
  }

  /** Settles a pending request; a reply to one that timed out already is dropped. */
  #settle(id: number, settle: (pending: Pending) => void): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    this.#pending.delete(id);
    clearTimeout(pending.timer);
    settle(pending);
  }

  #warn(text: string): void {
    this.emit('warning', text);
  }
}

/** Renders frames the way Node prints a stack trace: "    at fn (file:///app.js:12:5)". */
export function formatStack(stack: readonly StackFrame[]): string[] {
  return stack.map(({ functionName, url, line, column }) => {
    const location = `${url || '<anonymous>'}:${line}:${column}`;
    return functionName ? `    at ${functionName} (${location})` : `    at ${location}`;
  });
}

function isLoopState(value: unknown): value is LoopState {
  return value === 'idle' || value === 'busy' || value === 'blocked';
}

function optionalError(value: unknown): { error?: string } {
  return typeof value === 'string' ? { error: value } : {};
}

function closedError(): ClusterdError {
  return new ClusterdError('ERR_CLUSTERD_WATCHDOG_CLOSED', "The worker's watchdog pipe is closed (the worker has exited)");
}
