// The worker's end of the IPC channel is the app's to write to, and Node's master side of it trusts
// what comes (lib/internal/child_process.js): one line that is not JSON on fd 3 throws out of the
// channel's read callback, a `NODE_HANDLE_ACK` sent while no handle is on its way trips an assertion
// in Node's own listener, and a message is buffered, however long, until its newline comes (150 MB
// messages took the master to 1.3 GB). Each of these took the master, and every worker with it, down.
// A handle the worker sends (process.send(message, socket)) is worse: Node turns it into a socket
// of the master's before anyone sees it, and one sent as a server's connection (`socket.server`
// with a `_connectionKey`) leaves a listener on the ChildProcess for good, one per key, that every
// later message from the worker runs through (20,000 keys: the master at 99% CPU). The runtime
// sends the master no handles, so the guard takes none: it closes the handle as it comes,
// acknowledges it as Node would (the worker's later sends wait for that), and hands on only the
// message (`onHandle`).
//
// A message nested millions deep (`[[[[...]]]]`, 7.6 MiB, under the cap) held Node's JSON.parse
// on the master's loop for 0.65 s and took 1.5 GB, one after another: the guard counts the nesting
// of each line as it is decoded, before Node parses it, and a line nested deeper than
// MAX_MESSAGE_DEPTH breaks the channel (the protocol's own messages are 4 deep at most).
//
// Node has no option for any of them, so this wraps the channel where Node reads it: a forged
// acknowledgement is dropped, and a channel that carries something other than messages, one
// message longer than MAX_MESSAGE_CHARS or nested deeper than MAX_MESSAGE_DEPTH, is a worker that
// breaks the protocol: `onBroken` says why (the caller kills it), and nothing more is read from it.
//
// Node's names used here (the ChildProcess's `kChannelHandle` symbol, the handle's `onread`, the
// JSON serialization's `kJSONBuffer` and `kStringDecoder` symbols, `_handleQueue`, `_send`) are the
// same from Node 20 to 24; where one is missing, that part of the guard is off and the channel works
// as Node made it.
import type { ChildProcess } from 'node:child_process';
import { StringDecoder } from 'node:string_decoder';
import { clip, oneLine } from '../errors.js';

/** The longest message a worker may send (the runtime's largest, a loop breakdown, is far below). */
export const MAX_MESSAGE_CHARS = 8 * 1024 * 1024;
/** The deepest nesting of arrays and objects a message may have (the runtime's are 4 deep at most). */
export const MAX_MESSAGE_DEPTH = 64;

interface ChannelHandle {
  onread: ((...args: unknown[]) => unknown) | null;
  [key: symbol]: unknown;
}

function symbolNamed(object: object, description: string): symbol | undefined {
  return Object.getOwnPropertySymbols(object).find((symbol) => symbol.description === description);
}

export interface ChannelGuard {
  /** Once, when the worker breaks the channel: why (the caller kills it). */
  onBroken: (why: string) => void;
  /** A message the worker sent with a handle, after the handle was closed. */
  onHandle: (message: unknown) => void;
  /**
   * Once the channel's end was read (the worker closed it, or died): every message it sent has been
   * read, and goes out on the next tick. Node's 'disconnect' can be later, or never: it waits for
   * the acknowledgement of a handle it sent (the worker died before it could) that never comes.
   */
  onEnd?: () => void;
}

/** Guards `child`'s IPC channel (see above). */
export function guardChannel(child: ChildProcess, { onBroken, onHandle, onEnd }: ChannelGuard): void {
  const internal = child as ChildProcess & { _handleQueue?: unknown; _send?: (message: object, handle: null, options: boolean) => unknown };
  const emit = child.emit;
  child.emit = function (this: ChildProcess, event: string | symbol, ...args: unknown[]): boolean {
    // Node's listener for acknowledgements asserts that a handle was sent: without one, the ack is no
    // answer to anything.
    if (event === 'internalMessage' && isHandleAck(args[0]) && !Array.isArray(internal._handleQueue)) return false;
    if (event === 'internalMessage' && cmdOf(args[0]) === 'NODE_HANDLE') {
      const handle = args[1] as { close?: () => void } | null | undefined;
      try {
        handle?.close?.();
      } catch {
        // Already closed.
      }
      // Node's answer: NACK when the descriptor did not come with the message (the worker sends it
      // again, at most 3 times), ACK when it did.
      internal._send?.call(child, { cmd: handle ? 'NODE_HANDLE_ACK' : 'NODE_HANDLE_NACK' }, null, true);
      if (handle) onHandle((args[0] as { msg?: unknown }).msg);
      return false;
    }
    return (emit as (event: string | symbol, ...args: unknown[]) => boolean).call(this, event, ...args);
  } as typeof child.emit;

  const handleSymbol = symbolNamed(child, 'kChannelHandle');
  const handle = handleSymbol ? ((child as unknown as Record<symbol, ChannelHandle | undefined>)[handleSymbol] ?? null) : null;
  const onread = handle?.onread;
  if (!handle || typeof onread !== 'function') return;
  const bufferSymbol = symbolNamed(handle, 'kJSONBuffer');
  let broken = false;
  const breaks = (why: string): void => {
    broken = true;
    // What Node held of the bad message goes now, not when the process is gone.
    if (bufferSymbol) handle[bufferSymbol] = '';
    onBroken(why);
  };
  // Node decodes each read with this, then splits it into lines and parses each: what it returns is
  // what Node parses. Once a line is too deep nothing more is handed on.
  const decoderSymbol = symbolNamed(handle, 'kStringDecoder');
  if (decoderSymbol) {
    const decoder = new StringDecoder('utf8');
    const nesting = new NestingScan();
    handle[decoderSymbol] = {
      write(data: Uint8Array): string {
        const text = decoder.write(data);
        if (broken) return '';
        if (!nesting.deeperThan(text, MAX_MESSAGE_DEPTH)) return text;
        breaks(`it sent a message nested more than ${MAX_MESSAGE_DEPTH} deep on its IPC channel`);
        return '';
      },
    };
  }
  handle.onread = function (this: unknown, ...args: unknown[]): unknown {
    // Once broken, reads are dropped; the end of the channel (no buffer) still closes it as Node does.
    if (broken && args[0] !== undefined) return undefined;
    try {
      return onread.apply(this, args);
    } catch (error) {
      breaks(`it wrote something other than a message on its IPC channel (${clip(oneLine(error), 200)})`);
      return undefined;
    } finally {
      const buffered = bufferSymbol ? handle[bufferSymbol] : undefined;
      if (!broken && typeof buffered === 'string' && buffered.length > MAX_MESSAGE_CHARS) {
        breaks(`it sent a message of over ${MAX_MESSAGE_CHARS / 1024 / 1024} MiB on its IPC channel`);
      }
      if (args[0] === undefined) onEnd?.();
    }
  };
}

function cmdOf(message: unknown): unknown {
  return typeof message === 'object' && message !== null ? (message as { cmd?: unknown }).cmd : undefined;
}

function isHandleAck(message: unknown): boolean {
  const cmd = cmdOf(message);
  return cmd === 'NODE_HANDLE_ACK' || cmd === 'NODE_HANDLE_NACK';
}

const NEWLINE = 10;
const QUOTE = 34;
const BACKSLASH = 92;
const OPEN_BRACKET = 91;
const CLOSE_BRACKET = 93;
const OPEN_BRACE = 123;
const CLOSE_BRACE = 125;

/** Follows the nesting of JSON lines read in pieces: brackets inside strings do not count, a newline ends a line. */
export class NestingScan {
  #depth = 0;
  #inString = false;
  #escaped = false;

  /** Reads `text` on from where the last piece ended; true once a line is nested deeper than `max`. */
  deeperThan(text: string, max: number): boolean {
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i);
      if (code === NEWLINE) {
        // Node splits lines here whatever came before (JSON has no raw newline in a string).
        this.#depth = 0;
        this.#inString = false;
        this.#escaped = false;
      } else if (this.#inString) {
        if (this.#escaped) this.#escaped = false;
        else if (code === BACKSLASH) this.#escaped = true;
        else if (code === QUOTE) this.#inString = false;
      } else if (code === QUOTE) {
        this.#inString = true;
      } else if (code === OPEN_BRACKET || code === OPEN_BRACE) {
        if (++this.#depth > max) return true;
      } else if (code === CLOSE_BRACKET || code === CLOSE_BRACE) {
        this.#depth--;
      }
    }
    return false;
  }
}
