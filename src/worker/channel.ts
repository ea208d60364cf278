import { isProtocolMessage, type ListenRequest, type MasterMessage, type WorkerMessage } from '../protocol.js';

type Handler<C extends MasterMessage['cmd']> = (message: Extract<MasterMessage, { cmd: C }>, handle: unknown) => void;

const handlers = new Map<string, (message: never, handle: unknown) => void>();
const pending = new Map<number, (message: never, handle: unknown) => void>();
let seq = 0;
let installed = false;

/** The worker's one listener for the master's messages: dispatches by `cmd`, replies by `seq`. */
function install(): void {
  if (installed) return;
  installed = true;
  // 'internalMessage': where Node puts `NODE_`-prefixed commands (src/protocol.ts), out of the app's sight.
  (process as NodeJS.EventEmitter).on('internalMessage', (message: unknown, handle: unknown) => {
    if (!isProtocolMessage(message)) return;
    const reply = (message as { seq?: number }).seq;
    if (message.cmd.endsWith('-reply') && reply !== undefined) {
      const resolve = pending.get(reply);
      pending.delete(reply);
      resolve?.(message as never, handle);
      return;
    }
    handlers.get(message.cmd)?.(message as never, handle);
  });
}

/** Registers the handler for one master command. */
export function on<C extends MasterMessage['cmd']>(cmd: C, handler: Handler<C>): void {
  install();
  handlers.set(cmd, handler as (message: never, handle: unknown) => void);
}

/**
 * Node's own process.send, taken before the listen hook puts its guard on the app's (a check of the
 * handle argument, which the runtime's messages never carry): rr acknowledges every connection.
 */
const rawSend = process.send?.bind(process);

/** Sends a message to the master; silently dropped once the master is gone. */
export function send(message: WorkerMessage): void {
  if (process.connected) rawSend!(message);
}

let released = false;

/**
 * While the worker boots, the channel does not keep it alive: an app whose entry finished with
 * nothing left to run (no server, no timer, no socket) ends as it would under node, at once, not
 * after --listen-timeout. Held again from the first request to the master (a listen) or 'ready'.
 */
export function releaseWhileBooting(): void {
  released = true;
  process.channel?.unref();
}

/** The channel keeps the process alive again (as it did before releaseWhileBooting()). */
export function hold(): void {
  if (!released) return;
  released = false;
  process.channel?.ref();
}

/** Still released: the app has neither listened nor said it is ready. */
export function isReleased(): boolean {
  return released;
}

/** Sends a request and calls back with the master's `*-reply` carrying the same seq. */
export function request<R extends MasterMessage>(
  message: Omit<ListenRequest, 'seq'>,
  callback: (reply: R, handle: unknown) => void,
): void {
  install();
  // A reply is awaited: nothing else of the app's may be keeping the process alive meanwhile.
  hold();
  const id = ++seq;
  pending.set(id, callback as (message: never, handle: unknown) => void);
  send({ ...message, seq: id } as WorkerMessage);
}
