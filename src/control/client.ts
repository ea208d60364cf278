// The client side of the control plane: one connection to one cluster's Control service, a method
// per rpc. Finding the cluster to connect to is discovery.ts; CLI commands stay thin over both.
import * as grpc from '@grpc/grpc-js';
import { ClusterdError } from '../errors.js';
import { LOOP_ANSWER_MAX_MS } from '../master/loop-requests.js';
import type { ScaleOutcome, StopOutcome } from '../master/status.js';
import { tokenMetadata } from './auth.js';
import { decodeStatus } from './convert.js';
import { decodeLogEntry, decodeLoop, decodeProgress, decodeScale, decodeStack, decodeStopOutcome } from './convert-ops.js';
import { MARKER_KINDS } from '../dashboard/history.js';
import { formatControlAddress, type TcpAddress } from './options.js';
import {
  type WireClusterStatus,
  type WireDashboardChunk,
  type WireDashboardRequest,
  type WireLogEntry,
  type WireLogsRequest,
  type WireLoopReply,
  type WireLoopRequest,
  type WireOperationProgress,
  type WireProfileChunk,
  type WireProfileRequest,
  type WireReloadRequest,
  type WireRestartRequest,
  type WireScaleReply,
  type WireScaleRequest,
  type WireStackReply,
  type WireStackRequest,
  type WireStatusRequest,
  type WireStopReply,
  type WireStopRequest,
  type WireWatchRequest,
  controlService,
} from './proto.js';
import { controlError } from './status-codes.js';
import type { ClusterView, LogView, LoopView, ProgressView, StackView } from './types.js';

export { NOT_RUNNING, controlError } from './status-codes.js';

export type ControlTarget =
  | { transport: 'unix'; socketPath: string }
  | ({ transport: 'tcp'; token: string } & TcpAddress);

/** How long one call may take before the cluster counts as not answering. */
export const DEFAULT_CALL_TIMEOUT_MS = 5_000;
/** How long `ls` (and finding the only cluster) waits on each socket: a stopped master must not stall it. */
export const PROBE_TIMEOUT_MS = 2_000;

const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  // A status with history is ~100 bytes per worker per sample: 4 MiB (the default) would cap
  // `top` at a few hundred workers.
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
};

type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, reply?: Res) => void,
) => grpc.ClientUnaryCall;
type StreamMethod<Req, Res> = (request: Req, metadata: grpc.Metadata, options?: grpc.CallOptions) => grpc.ClientReadableStream<Res>;

interface RawControlClient extends grpc.Client {
  Status: UnaryMethod<WireStatusRequest, WireClusterStatus>;
  Watch: StreamMethod<WireWatchRequest, WireClusterStatus>;
  Reload: StreamMethod<WireReloadRequest, WireOperationProgress>;
  Restart: StreamMethod<WireRestartRequest, WireOperationProgress>;
  Scale: UnaryMethod<WireScaleRequest, WireScaleReply>;
  Stop: UnaryMethod<WireStopRequest, WireStopReply>;
  Stack: UnaryMethod<WireStackRequest, WireStackReply>;
  Profile: StreamMethod<WireProfileRequest, WireProfileChunk>;
  Loop: UnaryMethod<WireLoopRequest, WireLoopReply>;
  Logs: StreamMethod<WireLogsRequest, WireLogEntry>;
  Dashboard: StreamMethod<WireDashboardRequest, WireDashboardChunk>;
}

/** The most a Dashboard message may weigh once its pieces are joined: a full window of 1024 workers is ~100 MB. */
export const MAX_DASHBOARD_MESSAGE_CHARS = 256 * 1024 * 1024;

export interface DashboardHandlers {
  /** One whole message's JSON text, unparsed: the caller checks it (it crossed a process boundary). */
  onMessage(json: string): void;
  /** Once: null when the master ended the stream (it stopped), else why the stream failed. */
  onEnd(error: ClusterdError | null): void;
}

export interface WatchHandlers {
  onStatus(status: ClusterView): void;
  /** Once: null when the master ended the stream (it stopped), else why the stream failed. */
  onEnd(error: ClusterdError | null): void;
}

export interface LogsHandlers {
  onEntry(entry: LogView): void;
  /** Once: null when the stream ended (all recent lines sent, or the master stopped), else why it failed. */
  onEnd(error: ClusterdError | null): void;
}

/** The master's answer to Stop: the master that stops, its --grace, and (when asked and known) how the stop went. */
export interface StopReply {
  masterPid: number;
  graceMs: number;
  outcome: StopOutcome | null;
}

/** A server stream the caller may stop listening to; cancel() ends it without calling onEnd. */
export interface Subscription {
  cancel(): void;
}

/** One connection to one cluster's Control service. */
export class ControlClient {
  readonly target: ControlTarget;
  /** The socket path or HOST:PORT, for messages. */
  readonly address: string;
  readonly #raw: RawControlClient;
  readonly #token: string | null;

  constructor(target: ControlTarget) {
    this.target = target;
    const { Client } = controlService();
    if (target.transport === 'unix') {
      this.address = target.socketPath;
      this.#token = null;
      this.#raw = new Client(`unix:${target.socketPath}`, grpc.credentials.createInsecure(), CHANNEL_OPTIONS) as unknown as RawControlClient;
    } else {
      this.address = formatControlAddress(target);
      this.#token = target.token;
      this.#raw = new Client(this.address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS) as unknown as RawControlClient;
    }
  }

  /** The cluster now; `history` adds each worker's recent samples in brief. */
  async status({ history = false, timeoutMs = DEFAULT_CALL_TIMEOUT_MS }: { history?: boolean; timeoutMs?: number } = {}): Promise<ClusterView> {
    return decodeStatus(await this.#unary(this.#raw.Status, { includeHistory: history }, timeoutMs));
  }

  /**
   * Follows the cluster: onStatus at once and after every change (at most one per
   * `minIntervalMs`, 0 for the server's default), onEnd when the stream ends.
   */
  watch({ history = true, minIntervalMs = 0 }: { history?: boolean; minIntervalMs?: number }, handlers: WatchHandlers): Subscription {
    const call = this.#raw.Watch({ includeHistory: history, minIntervalMs }, this.#metadata());
    return this.#follow(call, (message) => handlers.onStatus(decodeStatus(message)), handlers.onEnd);
  }

  /** A rolling reload; resolves with its `done` step once every worker is replaced. */
  reload({ parallel = 1 }: { parallel?: number }, onProgress: (progress: ProgressView) => void): Promise<ProgressView> {
    return this.#operation(this.#raw.Reload.call(this.#raw, { parallel }, this.#metadata()), onProgress);
  }

  /** Replaces worker `id`; resolves with the `done` step naming its new pid. */
  restart(id: number, onProgress: (progress: ProgressView) => void): Promise<ProgressView> {
    return this.#operation(this.#raw.Restart.call(this.#raw, { id }, this.#metadata()), onProgress);
  }

  /**
   * `N`, `+K` or `-K` workers; resolves with the new count once they are all ready and those taken
   * away have exited (no deadline), and those of them killed at --grace (none from an older master).
   */
  async scale(spec: string): Promise<ScaleOutcome> {
    return decodeScale(await this.#unary(this.#raw.Scale, { spec }, null));
  }

  /**
   * Asks the master to stop gracefully (stopping already, that changes nothing); resolves at once with
   * its pid and --grace (ms, 0 if unknown). With `waitForOutcome`, once every worker has exited, with
   * how the stop went too (`outcome`); a master older than that answer replies at once, outcome null.
   */
  async stop({ waitForOutcome = false, timeoutMs = DEFAULT_CALL_TIMEOUT_MS, signal }: { waitForOutcome?: boolean; timeoutMs?: number; signal?: AbortSignal } = {}): Promise<StopReply> {
    const reply = await this.#unary(this.#raw.Stop, { waitForOutcome }, timeoutMs, signal);
    return { masterPid: reply.masterPid, graceMs: reply.graceMs, outcome: decodeStopOutcome(reply.outcome) };
  }

  /** Worker `id`'s current JavaScript stack. */
  async stack(id: number, { timeoutMs = DEFAULT_CALL_TIMEOUT_MS }: { timeoutMs?: number } = {}): Promise<StackView> {
    return decodeStack(await this.#unary(this.#raw.Stack, { id }, timeoutMs));
  }

  /**
   * A CPU profile of worker `id` over `durationMs`: its JSON (the whole document, once the stream has
   * ended well), or the stack of a loop too blocked to profile.
   */
  profile(id: number, { durationMs, intervalUs = 0, signal }: { durationMs: number; intervalUs?: number; signal?: AbortSignal }): Promise<{ json: Buffer } | { blocked: StackView & { blockedMs: number } }> {
    return new Promise((resolve, reject) => {
      const pieces: Buffer[] = [];
      let blocked: (StackView & { blockedMs: number }) | null = null;
      const subscription = this.#follow(
        this.#raw.Profile.call(this.#raw, { id, durationMs, intervalUs }, this.#metadata()),
        (chunk) => {
          if (chunk.blocked) blocked = { ...decodeStack(chunk.blocked), blockedMs: chunk.blockedMs };
          else if (chunk.data) pieces.push(Buffer.from(chunk.data));
        },
        (error) => {
          if (error) reject(error);
          else resolve(blocked ? { blocked } : { json: Buffer.concat(pieces) });
        },
      );
      // The master stops the profiler when the call goes: nobody waits for the profile any more.
      signal?.addEventListener(
        'abort',
        () => {
          subscription.cancel();
          reject(new ClusterdError('ERR_CLUSTERD_CONTROL', 'the profile was cancelled'));
        },
        { once: true },
      );
    });
  }

  /** Where worker `id`'s loop spends `durationMs` (no deadline beyond the window and a margin); `signal` ends it early. */
  async loop(id: number, { durationMs, signal }: { durationMs: number; signal?: AbortSignal }): Promise<LoopView> {
    return decodeLoop(await this.#unary(this.#raw.Loop, { id, durationMs }, durationMs + LOOP_ANSWER_MAX_MS + DEFAULT_CALL_TIMEOUT_MS, signal));
  }

  /** Recent output lines (`lines` at most; `worker` 0 for all), then with `follow` every new one. */
  logs({ follow = false, worker = 0, lines = 0 }: { follow?: boolean; worker?: number; lines?: number }, handlers: LogsHandlers): Subscription {
    const call = this.#raw.Logs({ follow, worker, lines }, this.#metadata());
    return this.#follow(call, (message) => handlers.onEntry(decodeLogEntry(message)), handlers.onEnd);
  }

  /**
   * The master's dashboard feed: a snapshot, then updates, each as its JSON text, until cancelled or the
   * master stops. `markerKinds`: those this client reads (an older client's, none, in tests).
   */
  dashboard(handlers: DashboardHandlers, { markerKinds = MARKER_KINDS }: { markerKinds?: readonly string[] } = {}): Subscription {
    const call = this.#raw.Dashboard({ markerKinds: [...markerKinds] }, this.#metadata());
    let pieces: string[] = [];
    let size = 0;
    let subscription: Subscription | null = null;
    subscription = this.#follow(
      call,
      (chunk) => {
        size += chunk.json.length;
        if (size > MAX_DASHBOARD_MESSAGE_CHARS) {
          subscription?.cancel();
          handlers.onEnd(new ClusterdError('ERR_CLUSTERD_CONTROL', `the cluster at ${this.address} sent a dashboard message of more than ${MAX_DASHBOARD_MESSAGE_CHARS} characters`));
          return;
        }
        pieces.push(chunk.json);
        if (!chunk.end) return;
        const json = pieces.join('');
        pieces = [];
        size = 0;
        handlers.onMessage(json);
      },
      handlers.onEnd,
    );
    return subscription;
  }

  close(): void {
    this.#raw.close();
  }

  #metadata(): grpc.Metadata {
    return this.#token === null ? new grpc.Metadata() : tokenMetadata(this.#token);
  }

  /** One unary call; `timeoutMs` null waits as long as the operation takes; `signal` cancels it. */
  #unary<Req, Res>(method: UnaryMethod<Req, Res>, request: Req, timeoutMs: number | null, signal?: AbortSignal): Promise<Res> {
    return new Promise((resolve, reject) => {
      const deadline = timeoutMs === null ? Infinity : Date.now() + timeoutMs;
      const call = method.call(this.#raw, request, this.#metadata(), { deadline }, (error, reply) => {
        signal?.removeEventListener('abort', cancel);
        if (error || !reply) reject(controlError(error, this.address));
        else resolve(reply);
      });
      const cancel = (): void => call.cancel();
      if (signal?.aborted) cancel();
      else signal?.addEventListener('abort', cancel, { once: true });
    });
  }

  #follow<T>(call: grpc.ClientReadableStream<T>, onMessage: (message: T) => void, onEnd: (error: ClusterdError | null) => void): Subscription {
    let settled = false;
    const settle = (error: ClusterdError | null): void => {
      if (settled) return;
      settled = true;
      onEnd(error);
    };
    call.on('data', (message: T) => {
      if (!settled) onMessage(message);
    });
    call.on('error', (error: grpc.ServiceError) => settle(controlError(error, this.address)));
    call.on('status', (status: grpc.StatusObject) => {
      if (status.code === grpc.status.OK) settle(null);
    });
    return {
      cancel: () => {
        settled = true;
        call.cancel();
      },
    };
  }

  /** Reload and Restart: steps to onProgress, the final `done` step as the result. */
  #operation(call: grpc.ClientReadableStream<WireOperationProgress>, onProgress: (progress: ProgressView) => void): Promise<ProgressView> {
    return new Promise((resolve, reject) => {
      let done: ProgressView | null = null;
      this.#follow(
        call,
        (message) => {
          const progress = decodeProgress(message);
          if (progress.phase === 'done') done = progress;
          else onProgress(progress);
        },
        (error) => {
          if (error) reject(error);
          else if (done) resolve(done);
          else reject(new ClusterdError('ERR_CLUSTERD_CONTROL', `the cluster at ${this.address} ended the operation without saying how it went`));
        },
      );
    });
  }
}
