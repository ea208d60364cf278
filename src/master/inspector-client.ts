// The master's connection to a worker's inspector: the inspector protocol over a WebSocket (the
// `ws` package: Node 20 has no WebSocket client of its own). What comes over it is the app's to fake.
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import type { InspectorSession } from '../loop/capture.js';
import { clip, oneLine } from '../errors.js';

/** The longest a command to a worker's inspector may go unanswered (Profiler.stop of a 5-minute profile is the slowest). */
export const POST_TIMEOUT_MS = 30_000;

/** The inspector protocol over a WebSocket: commands by id, events by method (as node:inspector's Session). */
export class InspectorClient extends EventEmitter implements InspectorSession {
  readonly #socket: WebSocket;
  readonly #pending = new Map<number, { resolve: (result: unknown) => void; reject: (error: Error) => void }>();
  #nextId = 1;
  /** Why it was closed, when this side closed it for a reason. */
  #reason: Error | null = null;
  /** Settles with the reason once the connection has closed, whichever side closed it. */
  readonly ended: Promise<Error>;

  readonly #postTimeoutMs: number;

  private constructor(socket: WebSocket, postTimeoutMs: number) {
    super();
    this.#socket = socket;
    this.#postTimeoutMs = postTimeoutMs;
    let ended: (reason: Error) => void = () => {};
    this.ended = new Promise((resolve) => (ended = resolve));
    socket.on('message', (data) => this.#onMessage(String(data)));
    socket.on('close', () => {
      const reason = this.#reason ?? new Error('the inspector connection closed');
      for (const { reject } of this.#pending.values()) reject(reason);
      this.#pending.clear();
      ended(reason);
      this.emit('close');
    });
    socket.on('error', () => {});
  }

  static connect(url: string, timeoutMs: number, postTimeoutMs = POST_TIMEOUT_MS): Promise<InspectorClient> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, { handshakeTimeout: timeoutMs, perMessageDeflate: false, maxPayload: 256 * 1024 * 1024 });
      socket.once('open', () => resolve(new InspectorClient(socket, postTimeoutMs)));
      socket.once('error', reject);
    });
  }

  get open(): boolean {
    return this.#socket.readyState === WebSocket.OPEN;
  }

  /**
   * Sends a command; its answer, or a rejection once the connection has closed. An inspector that
   * does not answer within its post timeout (POST_TIMEOUT_MS; a fake one, or a main thread stuck in native code) has
   * the connection closed: a profile, a stack or a loop breakdown never waits for it for good.
   */
  post(method: string, params: object = {}): Promise<unknown> {
    if (!this.open) return Promise.reject(new Error('the inspector connection is closed'));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.close(new Error(`the worker's inspector did not answer ${method} within ${this.#postTimeoutMs / 1000} s`)), this.#postTimeoutMs).unref();
      const settled = <T>(settle: (value: T) => void) => (value: T): void => {
        clearTimeout(timer);
        settle(value);
      };
      this.#pending.set(id, { resolve: settled(resolve), reject: settled(reject) });
      this.#socket.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Closes the connection; what is pending fails with `reason`. */
  close(reason?: Error): void {
    this.#reason ??= reason ?? null;
    this.#socket.close();
  }

  /**
   * One message from the worker's inspector, which is the app's to fake (it prints the address the
   * master connects to): anything malformed, or that a listener cannot take, ends the connection
   * (each caller then fails with the reason), never the master.
   */
  #onMessage(text: string): void {
    try {
      this.#dispatch(JSON.parse(text) as unknown);
    } catch (error) {
      this.close(new Error(`the worker's inspector sent a malformed message (${clip(oneLine(error), 200)})`));
    }
  }

  #dispatch(message: unknown): void {
    if (typeof message !== 'object' || message === null) throw new Error(`expected an object, got ${message === null ? 'null' : typeof message}`);
    const { id, method, params, result, error } = message as Record<string, unknown>;
    if (typeof id === 'number') {
      const pending = this.#pending.get(id);
      this.#pending.delete(id);
      if (error !== undefined && error !== null) {
        const text = typeof error === 'object' ? (error as { message?: unknown }).message : undefined;
        pending?.reject(new Error(typeof text === 'string' ? clip(text, 500) : 'inspector error'));
      } else pending?.resolve(result);
    } else if (typeof method === 'string') {
      this.emit(method, { method, params: typeof params === 'object' && params !== null ? params : {} });
    } else throw new Error('neither a reply (id) nor an event (method)');
  }
}
