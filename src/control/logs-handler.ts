// The Logs rpc: a worker's recent lines, then (with follow) every new one until the client
// cancels or the master stops. Workers can write faster than a client reads (a terminal over
// SSH, a stopped `less`); the master then keeps at most MAX_BACKLOG lines for that client and
// counts the rest as dropped, so one slow reader costs bounded memory and never slows the
// workers, whose output the master must keep draining.
import * as grpc from '@grpc/grpc-js';
import type { ControlOperations, ControlSource, LogEntry } from '../master/status.js';
import { keptLine } from '../master/logs.js';
import { encodeLogEntry } from './convert-ops.js';
import { streamLife, type TrackStream } from './stream-life.js';
import type { WireLogEntry, WireLogsRequest } from './proto.js';
import { parseLogsRequest } from './requests.js';
import { noSuchWorker, toServiceError } from './status-codes.js';

/** Lines kept for a client that is not reading; above this they are dropped and counted. */
export const MAX_BACKLOG = 2_000;

type LogsCall = grpc.ServerWritableStream<WireLogsRequest, WireLogEntry>;
export type Queued = LogEntry | { dropped: number };

export function logsHandler(operations: ControlOperations, source: ControlSource, track: TrackStream): (call: LogsCall) => void {
  return (call) => {
    try {
      serveLogs(call, operations, source, track);
    } catch (error) {
      call.emit('error', toServiceError(error));
    }
  };
}

function serveLogs(call: LogsCall, operations: ControlOperations, source: ControlSource, track: TrackStream): void {
  const { worker: only, lines, follow } = parseLogsRequest(call.request);
  const recent = operations.recentLogs(only);
  if (only !== undefined && recent.length === 0) {
    // An id that is gone but whose lines are still kept is fine; one never seen is a typo. An id of
    // the cluster's with no process now (waiting out a restart's backoff) is the cluster's still.
    const status = source.status();
    const ids = [...new Set([...Array.from({ length: status.totals.desired }, (_, index) => index + 1), ...status.workers.map((w) => w.id)])].sort((a, b) => a - b);
    if (!ids.includes(only)) throw noSuchWorker(only, status.name, ids);
  }
  const first = lines > 0 ? recent.slice(-lines) : [];

  if (!follow) {
    for (const entry of first) call.write(encodeLogEntry(entry));
    call.end();
    return;
  }

  const queue: Queued[] = [];
  let blocked = false;
  let unsubscribe = (): void => {};
  // When the master stops, what the client has not read yet is lost with it.
  const stream = streamLife(call, track, {
    onClose: () => {
      queue.length = 0;
      unsubscribe();
    },
  });
  const write = (item: Queued): void => {
    const wire = 'dropped' in item ? droppedNote(item.dropped) : encodeLogEntry(item);
    if (!call.write(wire)) {
      blocked = true;
      call.once('drain', () => {
        blocked = false;
        flush();
      });
    }
  };
  const flush = (): void => {
    while (stream.open && !blocked && queue.length > 0) write(queue.shift()!);
  };
  const deliver = (entry: LogEntry): void => {
    if (!stream.open || (only !== undefined && entry.worker !== only)) return;
    if (!blocked && queue.length === 0) {
      write(entry);
      return;
    }
    backlog(queue, entry);
  };

  // A new line is clipped as the recent ones were in the master's ring, whether this reader keeps up
  // or not: one rule for every line `logs -f` sends. Once only: a clipped line is longer than the
  // limit, so clipping it again would clip the note.
  unsubscribe = operations.followLogs((line) => deliver(keptLine(line)));
  for (const entry of first) deliver(entry);
}

/**
 * Queues a line (clipped already) for a reader that is behind, up to MAX_BACKLOG; past it the loss is
 * counted in a note that keeps its place among the lines. Once full, lines are dropped until the reader has taken half
 * of what waits: one gap and one note per fall behind, not a note for each line there was room for
 * again as the reader took one.
 */
export function backlog(queue: Queued[], entry: LogEntry): void {
  const last = queue.at(-1);
  if (last && 'dropped' in last && queue.length > MAX_BACKLOG / 2) {
    last.dropped++;
    return;
  }
  if (queue.length < MAX_BACKLOG) queue.push(entry);
  else queue.push({ dropped: 1 });
}

function droppedNote(count: number): WireLogEntry {
  return {
    time: Date.now(),
    worker: 0,
    pid: process.pid,
    stream: 'LOG_STREAM_STDERR',
    message: `clusterd: ${count} line${count === 1 ? '' : 's'} dropped: this reader fell more than ${MAX_BACKLOG} lines behind`,
  };
}
