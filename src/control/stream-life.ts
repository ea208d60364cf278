// A server stream's life, the same for every streaming call (Watch, Logs, Dashboard, the operations
// and Profile): open until the client cancels, the call errs, finishes or closes, or the master
// stops. Whichever comes first stops it once, so that nothing is left subscribed to a stream that
// is gone and nothing is written to one that ended.
import type { EventEmitter } from 'node:events';

/** Registers what ends a stream when the master stops; returns the function that forgets it. */
export type TrackStream = (end: () => void) => () => void;

/** A TrackStream that keeps the ends in `set` (the master ends every stream in it when it stops). */
export function trackIn(set: Set<() => void>): TrackStream {
  return (end) => {
    set.add(end);
    return () => set.delete(end);
  };
}

export interface StreamLife {
  readonly open: boolean;
  /** Stops the stream (onClose runs); true for the one caller that stopped it. */
  close(): boolean;
}

export interface StreamLifeOptions {
  /** Runs once, when the stream stops for any reason. */
  onClose?: () => void;
  /** What the client gets when the master stops first (after onClose); by default the stream ends with OK. */
  onMasterStop?: () => void;
}

export function streamLife(call: EventEmitter & { end(): void }, track: TrackStream, { onClose, onMasterStop = () => call.end() }: StreamLifeOptions = {}): StreamLife {
  let open = true;
  const close = (): boolean => {
    if (!open) return false;
    open = false;
    untrack();
    onClose?.();
    return true;
  };
  const untrack = track(() => {
    if (close()) onMasterStop();
  });
  for (const event of ['cancelled', 'error', 'finish', 'close']) call.on(event, close);
  return {
    get open() {
      return open;
    },
    close,
  };
}
