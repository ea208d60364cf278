// The client side of the control plane: find the clusters of this user, connect to one by name
// (or to a remote one over TCP), and call the Control service. CLI commands stay thin over this.
import * as grpc from '@grpc/grpc-js';
import { readdir } from 'node:fs/promises';
import { ClusterdError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { tokenMetadata } from './auth.js';
import { decodeStatus } from './convert.js';
import { formatControlAddress, type TcpAddress } from './options.js';
import { CLUSTER_NAME, nameOfSocket, runtimeDir, socketPath } from './paths.js';
import { controlService, type WireClusterStatus, type WireStatusRequest, type WireWatchRequest } from './proto.js';
import type { ClusterView } from './types.js';

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

interface RawControlClient extends grpc.Client {
  Status(
    request: WireStatusRequest,
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: (error: grpc.ServiceError | null, reply?: WireClusterStatus) => void,
  ): grpc.ClientUnaryCall;
  Watch(request: WireWatchRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<WireClusterStatus>;
}

export interface WatchHandlers {
  onStatus(status: ClusterView): void;
  /** Once: null when the master ended the stream (it stopped), else why the stream failed. */
  onEnd(error: ClusterdError | null): void;
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
  status({ history = false, timeoutMs = DEFAULT_CALL_TIMEOUT_MS }: { history?: boolean; timeoutMs?: number } = {}): Promise<ClusterView> {
    return new Promise((resolve, reject) => {
      this.#raw.Status({ includeHistory: history }, this.#metadata(), { deadline: Date.now() + timeoutMs }, (error, reply) => {
        if (error || !reply) reject(controlError(error, this.address));
        else resolve(decodeStatus(reply));
      });
    });
  }

  /**
   * Follows the cluster: onStatus at once and after every change (at most one per
   * `minIntervalMs`, 0 for the server's default), onEnd when the stream ends. cancel() ends it
   * without calling onEnd.
   */
  watch({ history = true, minIntervalMs = 0 }: { history?: boolean; minIntervalMs?: number }, handlers: WatchHandlers): { cancel(): void } {
    const call = this.#raw.Watch({ includeHistory: history, minIntervalMs }, this.#metadata());
    let settled = false;
    const settle = (error: ClusterdError | null): void => {
      if (settled) return;
      settled = true;
      handlers.onEnd(error);
    };
    call.on('data', (message: WireClusterStatus) => {
      if (!settled) handlers.onStatus(decodeStatus(message));
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

  close(): void {
    this.#raw.close();
  }

  #metadata(): grpc.Metadata {
    return this.#token === null ? new grpc.Metadata() : tokenMetadata(this.#token);
  }
}

export interface RunningCluster {
  name: string;
  socketPath: string;
  status: ClusterView;
}

/** A client and the status it read while connecting (so a command needs no second call). */
export interface Connection {
  client: ControlClient;
  status: ClusterView;
}

/** The clusters answering in the runtime directory, by name. Sockets nobody answers on are skipped. */
export async function listClusters({ dir = runtimeDir(), timeoutMs = PROBE_TIMEOUT_MS }: { dir?: string; timeoutMs?: number } = {}): Promise<RunningCluster[]> {
  const found = await probeAll(dir, timeoutMs);
  for (const { client } of found) client.close();
  return found.map(({ name, socketPath, status }) => ({ name, socketPath, status }));
}

export interface ConnectOptions {
  /** The cluster's name; may be left out when exactly one cluster runs. */
  name?: string | undefined;
  /** A remote cluster's TCP listener and token, instead of the local runtime directory. */
  control?: ({ token: string } & TcpAddress) | undefined;
  dir?: string;
  timeoutMs?: number;
}

/**
 * Connects to the cluster `name` (or the only one running) and reads its status. Throws a
 * ClusterdError with exit code NOT_FOUND naming what it looked for when there is no such cluster.
 */
export async function connect({ name, control, dir = runtimeDir(), timeoutMs = DEFAULT_CALL_TIMEOUT_MS }: ConnectOptions): Promise<Connection> {
  if (control) return connectTcp(control, name, timeoutMs);
  if (name !== undefined) {
    if (!CLUSTER_NAME.test(name)) throw notFound(`no cluster named ${JSON.stringify(name)} is running (not a valid cluster name)`);
    const client = new ControlClient({ transport: 'unix', socketPath: socketPath(name, dir) });
    try {
      return { client, status: await client.status({ timeoutMs }) };
    } catch (error) {
      client.close();
      if (!(error instanceof ClusterdError) || error.code !== NOT_RUNNING) throw error;
      const others = (await listClusters({ dir, timeoutMs: Math.min(timeoutMs, PROBE_TIMEOUT_MS) })).map((cluster) => cluster.name);
      const running = others.length === 0 ? 'none is running' : `running: ${others.join(', ')}`;
      throw notFound(`no cluster named ${name} is running (looked in ${dir}; ${running})`);
    }
  }
  const found = await probeAll(dir, Math.min(timeoutMs, PROBE_TIMEOUT_MS));
  if (found.length === 1) return { client: found[0]!.client, status: found[0]!.status };
  for (const { client } of found) client.close();
  if (found.length === 0) throw notFound(`no running cluster found (looked in ${dir})`);
  throw new ClusterdError(
    'ERR_CLUSTERD_AMBIGUOUS',
    `${found.length} clusters are running (${found.map((cluster) => cluster.name).join(', ')}): name the one you mean`,
    { exitCode: ExitCode.USAGE },
  );
}

async function connectTcp(control: { token: string } & TcpAddress, name: string | undefined, timeoutMs: number): Promise<Connection> {
  const client = new ControlClient({ transport: 'tcp', ...control });
  try {
    const status = await client.status({ timeoutMs });
    if (name !== undefined && status.name !== name) {
      throw notFound(`the cluster at ${client.address} is named ${status.name}, not ${name}`);
    }
    return { client, status };
  } catch (error) {
    client.close();
    throw error;
  }
}

/** Every cluster answering in `dir`, with an open client each (the caller closes them). */
async function probeAll(dir: string, timeoutMs: number): Promise<(RunningCluster & { client: ControlClient })[]> {
  let files: string[];
  try {
    files = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new ClusterdError('ERR_CLUSTERD_RUNTIME_DIR', `cannot read the runtime directory ${dir}: ${(error as Error).message}`, { cause: error });
  }
  const names = files.map(nameOfSocket).filter((name): name is string => name !== null).sort();
  const probes = await Promise.all(
    names.map(async (name) => {
      const path = socketPath(name, dir);
      const client = new ControlClient({ transport: 'unix', socketPath: path });
      try {
        return { name, socketPath: path, client, status: await client.status({ timeoutMs }) };
      } catch {
        // Stale (its master died without removing it) or not answering: not a running cluster.
        client.close();
        return null;
      }
    }),
  );
  return probes.filter((probe) => probe !== null);
}

/** ClusterdError code of a target nobody answers on. */
export const NOT_RUNNING = 'ERR_CLUSTERD_NOT_RUNNING';

/** A failed call as the one line a CLI user should see. */
export function controlError(error: grpc.ServiceError | null, address: string): ClusterdError {
  // grpc-js says "No connection established. Last error: Error: connect ECONNREFUSED ... Resolution note: ".
  const details = (error?.details || error?.message || 'no reply')
    .replace(/\s*Resolution note:.*$/s, '')
    .replace(/^No connection established\. Last error: (?:Error: )?/, '')
    .replace(/\.$/, '');
  switch (error?.code) {
    case grpc.status.UNAVAILABLE:
      return new ClusterdError(NOT_RUNNING, `no cluster answers at ${address} (${details})`, { exitCode: ExitCode.NOT_FOUND, cause: error });
    case grpc.status.DEADLINE_EXCEEDED:
      return new ClusterdError('ERR_CLUSTERD_TIMEOUT', `the cluster at ${address} did not answer in time`, { exitCode: ExitCode.NOT_FOUND, cause: error });
    case grpc.status.UNAUTHENTICATED:
      return new ClusterdError('ERR_CLUSTERD_UNAUTHENTICATED', `the cluster at ${address} refused the call: ${details}`, { exitCode: ExitCode.UNAUTHENTICATED, cause: error });
    case grpc.status.UNIMPLEMENTED:
      return new ClusterdError('ERR_CLUSTERD_UNIMPLEMENTED', `the cluster at ${address} runs a clusterd without this operation (${details})`, { cause: error });
    default:
      return new ClusterdError('ERR_CLUSTERD_CONTROL', `control call to ${address} failed: ${details}`, { cause: error });
  }
}

function notFound(message: string): ClusterdError {
  return new ClusterdError('ERR_CLUSTERD_NOT_FOUND', message, { exitCode: ExitCode.NOT_FOUND });
}
