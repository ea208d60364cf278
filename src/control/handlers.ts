// The Control service's methods: Status and Watch over a ControlSource here, the operations over
// ControlOperations in operation-handlers.ts and logs-handler.ts. A handler never throws into
// grpc-js: every failure becomes a gRPC status, so a bad request costs the caller its call and
// never the master its life.
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import type { ControlOperations, ControlSource } from '../master/status.js';
import type { DashboardSource } from '../dashboard/feed.js';
import { encodeStatus } from './convert.js';
import { dashboardHandler } from './dashboard-handler.js';
import { logsHandler } from './logs-handler.js';
import { operationHandlers, unimplemented, unimplementedOperations } from './operation-handlers.js';
import type { WireClusterStatus, WireLogEntry, WireLogsRequest, WireStatusRequest, WireWatchRequest } from './proto.js';
import { toServiceError } from './status-codes.js';
import { ClusterdError } from '../errors.js';
import { parseStatusRequest, parseWatchRequest } from './requests.js';
import { streamLife, trackIn } from './stream-life.js';

/** Watch and Logs streams open at once on one master, past which more are refused (BUSY). */
export const MAX_FOLLOW_STREAMS = 256;

export class ControlHandlers {
  readonly #source: ControlSource;
  readonly #operations: ControlOperations | null;
  readonly #dashboard: DashboardSource | null;
  /** One Dashboard handler for every listener (unix and TCP): its bound on streams is the master's. */
  #dashboardHandler: grpc.UntypedHandleCall | null = null;
  /** Open Watch streams, each with the function that ends it. */
  readonly #watches = new Set<() => void>();
  /** Other open server streams (Reload, Restart, Logs), likewise. */
  readonly #streams = new Set<() => void>();

  readonly #maxFollowStreams: number;
  #following = 0;

  constructor(source: ControlSource, operations: ControlOperations | null = null, dashboard: DashboardSource | null = null, maxFollowStreams = MAX_FOLLOW_STREAMS) {
    this.#source = source;
    this.#operations = operations;
    this.#dashboard = dashboard;
    this.#maxFollowStreams = maxFollowStreams;
  }

  /**
   * Runs `serve` for a Watch or Logs call unless MAX_FOLLOW_STREAMS of them are open (each holds a
   * subscription and a backlog in the master; one HTTP/2 connection can carry any number): then the
   * call fails with BUSY. Counted until the call ends, however it ends.
   */
  #follow(call: grpc.ServerWritableStream<unknown, unknown>, serve: () => void): void {
    if (this.#following >= this.#maxFollowStreams) {
      call.emit('error', toServiceError(new ClusterdError('ERR_CLUSTERD_BUSY', `refused: ${this.#maxFollowStreams} watch and logs streams are open on this cluster already`)));
      return;
    }
    this.#following++;
    let counted = true;
    const release = (): void => {
      if (!counted) return;
      counted = false;
      this.#following--;
    };
    call.once('close', release);
    call.once('finish', release);
    call.once('error', release);
    call.once('cancelled', release);
    serve();
  }

  /** The service implementation for grpc.Server#addService. */
  implementation(): grpc.UntypedServiceImplementation {
    const operations = this.#operations;
    const track = trackIn(this.#streams);
    return {
      Status: (call: grpc.ServerUnaryCall<WireStatusRequest, WireClusterStatus>, callback: grpc.sendUnaryData<WireClusterStatus>) =>
        this.#status(call, callback),
      Watch: (call: grpc.ServerWritableStream<WireWatchRequest, WireClusterStatus>) => this.#follow(call, () => this.#watch(call)),
      ...(operations ? { ...operationHandlers(operations, this.#source, track), Logs: this.#followingLogs(logsHandler(operations, this.#source, track)) } : unimplementedOperations()),
      Dashboard: (this.#dashboardHandler ??= this.#dashboard ? dashboardHandler(this.#dashboard, track) : unimplemented('Dashboard')),
    };
  }

  #followingLogs(serve: (call: grpc.ServerWritableStream<WireLogsRequest, WireLogEntry>) => void): (call: grpc.ServerWritableStream<WireLogsRequest, WireLogEntry>) => void {
    return (call) => this.#follow(call as grpc.ServerWritableStream<unknown, unknown>, () => serve(call));
  }

  /** Number of open Watch streams (tests assert none leak). */
  get watchers(): number {
    return this.#watches.size;
  }

  /** Number of open server streams of any kind: Watch, Reload, Restart, Logs, Dashboard. */
  get streams(): number {
    return this.#watches.size + this.#streams.size;
  }

  /**
   * The master is going away: Watch and Logs streams end with OK, an operation still running
   * with UNAVAILABLE.
   */
  endStreams(): void {
    for (const end of [...this.#watches, ...this.#streams]) end();
  }

  #status(call: grpc.ServerUnaryCall<WireStatusRequest, WireClusterStatus>, callback: grpc.sendUnaryData<WireClusterStatus>): void {
    const snapshot = this.#snapshot(parseStatusRequest(call.request).history);
    if ('error' in snapshot) callback(snapshot.error);
    else callback(null, snapshot.message);
  }

  /**
   * The current status at once, then after each change, coalesced: a change schedules one send
   * no sooner than `interval` after the previous one, and every change until then rides on it.
   * While the client is not reading (write() returned false) nothing is queued; the latest
   * state goes out on 'drain'. So a slow or stalled client costs the master one message of
   * memory, not a backlog.
   */
  #watch(call: grpc.ServerWritableStream<WireWatchRequest, WireClusterStatus>): void {
    const { intervalMs: interval, history } = parseWatchRequest(call.request);
    let lastSent = 0;
    let timer: NodeJS.Timeout | null = null;
    let blocked = false;
    let dirty = false;
    let unsubscribe = (): void => {};
    const stream = streamLife(call, trackIn(this.#watches), {
      onClose: () => {
        unsubscribe();
        if (timer) clearTimeout(timer);
        timer = null;
      },
    });

    const send = (): void => {
      timer = null;
      if (!stream.open) return;
      if (blocked) {
        dirty = true;
        return;
      }
      dirty = false;
      const snapshot = this.#snapshot(history);
      if ('error' in snapshot) {
        stream.close();
        call.emit('error', snapshot.error);
        return;
      }
      lastSent = performance.now();
      if (!call.write(snapshot.message)) {
        blocked = true;
        call.once('drain', () => {
          blocked = false;
          if (dirty) schedule();
        });
      }
    };
    const schedule = (): void => {
      if (!stream.open || timer) return;
      // The monotonic clock: by Date.now(), a backward step of the wall clock put the next push that far off.
      timer = setTimeout(send, Math.max(0, lastSent + interval - performance.now()));
      // Owned (cleared when the stream closes) and unref'd: a pending push never holds the master up.
      timer.unref();
    };
    unsubscribe = this.#source.onChange(schedule);
    send();
  }

  #snapshot(history: boolean): { message: WireClusterStatus } | { error: grpc.ServiceError | Partial<grpc.StatusObject> } {
    try {
      const operations = this.#operations;
      const lastBlocked = operations ? (id: number) => operations.lastBlocked(id) : undefined;
      return { message: encodeStatus(this.#source.status(), { history, lastBlocked }) };
    } catch (error) {
      return { error: { code: grpc.status.INTERNAL, details: `reading the cluster status failed: ${(error as Error)?.message ?? String(error)}` } };
    }
  }
}
