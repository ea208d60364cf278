// The master's side of the control plane: the Control service on `<runtime dir>/<name>.sock`
// (owner only, no token) and, on request, on a TCP address (token required).
// The socket's name is claimed as socket-file.ts claims any: of two masters starting with one name,
// exactly one wins, and a socket file left by a master that died is replaced.
import { existsSync } from 'node:fs';
import type { AddressInfo, ListenOptions } from 'node:net';
import type { DashboardSource } from '../dashboard/feed.js';
import type { ControlOperations, ControlSource } from '../master/status.js';
import { ClusterdError, UsageError } from '../errors.js';
import { RefusalLog, requireToken, type Refusal } from './auth.js';
import { ControlClient } from './client.js';
import { ControlHandlers } from './handlers.js';
import { ConnectionGuard } from './guard.js';
import { WrongTokenBudget } from './wrong-tokens.js';
import { GrpcListener } from './listener.js';
import { formatControlAddress, type TcpAddress } from './options.js';
import { CLUSTER_NAME_RULE } from '../options.js';
import { CLUSTER_NAME, ensureRuntimeDir, runtimeDir, socketPath as socketPathOf } from './paths.js';
import { controlService } from './proto.js';
import { answers, claimSocketFile, PROBE_TIMEOUT_MS, releaseSocketFile, SocketFileTaken } from './socket-file.js';

export interface ControlServerOptions {
  /** The cluster name: the socket is `<dir>/<name>.sock`. */
  name: string;
  source: ControlSource;
  /** Reload, Restart, Scale, Stop, Stack and Logs; without it they answer UNIMPLEMENTED. */
  operations?: ControlOperations | undefined;
  /** The dashboard's feed, for the Dashboard rpc; without it, UNIMPLEMENTED. */
  dashboard?: DashboardSource | undefined;
  /** Also serve on TCP; every call there must carry `authorization: Bearer <token>`. */
  tcp?: ({ token: string } & TcpAddress) | undefined;
  /** Told of calls the TCP listener refused (no token, a wrong one, unchecked after too many wrong ones): a source's first, then a count at most once a minute. */
  onRefused?: ((source: string, counts: Record<Refusal, number>, first: boolean) => void) | undefined;
  /** The runtime directory; by default runtimeDir() ($CLUSTERD_RUNTIME_DIR, $XDG_RUNTIME_DIR/clusterd, ...). */
  dir?: string;
  /** Watch and Logs streams open at once (default MAX_FOLLOW_STREAMS); past it they are refused, BUSY. */
  maxFollowStreams?: number;
  /** The TCP listener's budget of wrong tokens per source (wrong-tokens.ts); tests pass one with their own clock. */
  wrongTokens?: WrongTokenBudget;
}

export interface ControlServer {
  readonly socketPath: string;
  /** The TCP listener's address (with the real port when 0 was asked for), or null. */
  readonly tcpAddress: TcpAddress | null;
  /** Open Watch streams. */
  readonly watchers: number;
  /** Open server streams of any kind (Watch, Reload, Restart, Logs). */
  readonly streams: number;
  /** Ends open streams (Watch, Logs, operations), removes the socket file and stops listening. Safe to call twice. */
  close(): Promise<void>;
}

/** In-flight unary calls get this long to finish on close. */
export const SHUTDOWN_GRACE_MS = 1_000;

/**
 * Starts the control plane of the cluster `name`. Throws a ClusterdError when a live cluster of
 * that name already answers, when the runtime directory is unsafe, or when the TCP address
 * cannot be bound.
 */
export async function startControlServer({ name, source, operations, dashboard, tcp, onRefused = () => {}, dir = runtimeDir(), maxFollowStreams, wrongTokens = new WrongTokenBudget() }: ControlServerOptions): Promise<ControlServer> {
  if (!CLUSTER_NAME.test(name)) throw new UsageError(`Expected the cluster name to be ${CLUSTER_NAME_RULE}, got \`${name}\``);
  if (tcp && tcp.token.length === 0) throw new UsageError('Expected a non-empty control token for the TCP control listener');
  ensureRuntimeDir(dir);
  const path = socketPathOf(name, dir);
  const handlers = new ControlHandlers(source, operations ?? null, dashboard ?? null, maxFollowStreams);
  const { definition } = controlService();

  const unixListener = new GrpcListener({ definition, implementation: handlers.implementation() });
  let tcpListener: GrpcListener | null = null;
  let socketInode: number | null = null;

  const removeSocket = (): void => {
    // Only our own: a successor of the same name may already have claimed the path.
    if (socketInode !== null) releaseSocketFile(path, socketInode);
    socketInode = null;
  };
  const refusals = new RefusalLog(onRefused);
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    refusals.close();
    onExit.delete(removeSocket);
    removeSocket();
    handlers.endStreams();
    await Promise.all([unixListener.close(SHUTDOWN_GRACE_MS), tcpListener?.close(SHUTDOWN_GRACE_MS)]);
  };

  try {
    socketInode = await claimSocket(unixListener, path, name);
    // A master that exits without close() (process.exit in a signal path) still leaves no file.
    removeOnExit(removeSocket);
    let tcpAddress: TcpAddress | null = null;
    if (tcp) {
      const guard = new ConnectionGuard();
      tcpListener = new GrpcListener({
        definition,
        implementation: handlers.implementation(),
        interceptors: [requireToken(tcp.token, (connection) => guard.authenticated(connection), (source, why) => refusals.refused(source, why), wrongTokens)],
        guard,
      });
      const bound = await listen(tcpListener, { host: tcp.host, port: tcp.port }, `--control ${formatControlAddress(tcp)}`);
      tcpAddress = { host: tcp.host, port: (bound as AddressInfo).port };
    }
    return {
      socketPath: path,
      tcpAddress,
      get watchers() {
        return handlers.watchers;
      },
      get streams() {
        return handlers.streams;
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** Socket files to remove should the process exit without close(); one 'exit' listener for all. */
const onExit = new Set<() => void>();
let exitHooked = false;

function removeOnExit(remove: () => void): void {
  if (!exitHooked) {
    exitHooked = true;
    process.on('exit', () => {
      for (const hook of onExit) hook();
    });
  }
  onExit.add(remove);
}

/** Claims `path` for the control socket (socket-file.ts); returns its inode. */
async function claimSocket(listener: GrpcListener, path: string, name: string): Promise<number> {
  try {
    return await claimSocketFile(path, (temporary) => listen(listener, { path: temporary }, `the control socket ${temporary}`));
  } catch (error) {
    if (!(error instanceof SocketFileTaken)) {
      if (error instanceof ClusterdError) throw error;
      throw new ClusterdError('ERR_CLUSTERD_CONTROL_LISTEN', `cannot listen on the control socket ${path}: ${(error as Error).message}`, { cause: error });
    }
    if (error.conflict === 'not-a-socket') throw new ClusterdError('ERR_CLUSTERD_NAME_IN_USE', `${path} exists and is not a socket; remove it to start a cluster named ${name}`);
    // A rival that won the link may be starting still: answering or not, the name is taken.
    if (error.conflict === 'answers' || (await answers(path))) throw await alreadyRunning(path, name);
    throw new ClusterdError('ERR_CLUSTERD_NAME_IN_USE', `another clusterd is starting a cluster named ${name}; try again`);
  }
}

async function listen(listener: GrpcListener, options: ListenOptions, what: string): Promise<AddressInfo | string> {
  try {
    return await listener.listen(options);
  } catch (error) {
    throw new ClusterdError('ERR_CLUSTERD_CONTROL_LISTEN', `cannot listen on ${what}: ${(error as Error).message}`, { cause: error });
  }
}

async function alreadyRunning(path: string, name: string): Promise<ClusterdError> {
  const client = new ControlClient({ transport: 'unix', socketPath: path });
  let pid: number | null = null;
  try {
    pid = (await client.status({ timeoutMs: PROBE_TIMEOUT_MS })).masterPid;
  } catch {
    // It accepts connections but does not answer Status: still not ours to take.
  } finally {
    client.close();
  }
  const who = pid === null ? `its socket ${path} answers` : `pid ${pid}`;
  return new ClusterdError('ERR_CLUSTERD_NAME_IN_USE', `a cluster named ${name} is already running (${who})`);
}

/** Throws the "already running" error when a live master serves the cluster `name`. */
export async function assertNameFree(name: string, dir: string = runtimeDir()): Promise<void> {
  const path = socketPathOf(name, dir);
  if (existsSync(path) && (await answers(path))) throw await alreadyRunning(path, name);
}
