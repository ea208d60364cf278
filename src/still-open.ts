// What a draining worker still has open, as a line says it: the master's when --grace kills the
// worker, and the worker's own when the app exits in the middle of its drain. The worker runtime
// loads this too, so it holds nothing of the master's.
import type { StillOpen } from './protocol.js';

type OpenKind = keyof Omit<StillOpen, 'handlers'>;

const KINDS: ReadonlyArray<[OpenKind, string, string]> = [
  ['webSockets', 'WebSocket connection', 'WebSocket connections'],
  ['upgraded', 'other upgraded connection', 'other upgraded connections'],
  ['http2Sessions', 'HTTP/2 session', 'HTTP/2 sessions'],
  ['requests', 'HTTP request in flight', 'HTTP requests in flight'],
  ['receiving', 'HTTP request still being received', 'HTTP requests still being received'],
  ['idle', 'idle HTTP connection', 'idle HTTP connections'],
  ['other', 'other connection', 'other connections'],
];

/** `3 HTTP requests`, `1 HTTP request`: a count and the word for it. */
export const count = (n: number, one: string, many: string): string => `${n} ${n === 1 ? one : many}`;

/** `2 WebSocket connections`, `1 HTTP request in flight`, ... for each kind open. */
export function describeOpen(open: Omit<StillOpen, 'handlers'>): string[] {
  return KINDS.filter(([kind]) => open[kind] > 0).map(([kind, one, many]) => count(open[kind], one, many));
}
