import type { LoopBreakdown, LoopSample } from './loop/types.js';

// Every message between the master and a worker, in one place, read top to bottom.
// Commands start with `NODE_clusterd:`. Node routes a message whose `cmd` starts with `NODE_` to
// the process's 'internalMessage' event, not 'message' (node:cluster's own `NODE_CLUSTER` messages
// travel the same way): the app's process.on('message') never sees the runtime's messages (nor,
// under rr, a connection's handle), and an app that removes every 'message' listener does not cut
// its worker off. An app's own process.send() messages (and the PM2-style string 'ready') stay on
// 'message'.

/** What a worker's listen() asks the master for (mirrors Node's cluster `queryServer`). */
export interface ListenQuery {
  /** `address:port:addressType:fd:index`; equal keys in different workers share one socket. */
  key: string;
  /** A host, or for a unix socket its absolute path (abstract: starting with NUL). */
  address: string | null;
  /** -1 for a unix socket, as addressType. */
  port: number;
  addressType: number | string;
  /** Absent (JSON drops undefined) unless the app listens on an fd. */
  fd?: number;
  flags: number;
  backlog?: number;
  /** A unix socket's `listen({ readableAll, writableAll })`: the file's mode, which the master sets. */
  readableAll?: boolean;
  writableAll?: boolean;
}

/**
 * A listen's key without its index (node:cluster's `address:port:addressType:fd`, the fd left empty:
 * the worker binds an fd itself). The master checks a request's key against its query: a key names
 * the socket every worker with the same key shares.
 */
export function listenBase({ address, port, addressType }: Pick<ListenQuery, 'address' | 'port' | 'addressType'>): string {
  return `${address ?? ''}:${port}:${addressType}:`;
}

/** A dgram socket's bind (Node's dgram passes its type, `udp4` or `udp6`, as the address type). */
export function isUdp(query: Pick<ListenQuery, 'addressType'>): boolean {
  return query.addressType === 'udp4' || query.addressType === 'udp6';
}

/** The bind flags Node's dgram passes (libuv's UV_UDP_*), for a UDP listen. */
export const UV_UDP_IPV6ONLY = 1;
export const UV_UDP_REUSEADDR = 4;

/**
 * A host a worker may name in an own-listen message (the master repeats it in its lines): a host name or
 * an IP address, a v6 zone too, at most 200 characters.
 */
export const OWN_LISTEN_HOST = /^[\w.:%-]{1,200}$/;

/** sun_path holds 108 bytes on Linux, its terminating NUL included: the longest unix socket path. */
export const MAX_SOCKET_PATH_BYTES = 107;

/** Whether a listen is for a unix socket path (Node's addressType -1), not TCP. */
export function isSocketPath(query: Pick<ListenQuery, 'addressType'>): boolean {
  return query.addressType === -1;
}

/** The sockname of a unix socket: its path, as `server.address()` gives it, and no port. */
export function socketPathName(path: string): SockName {
  return { address: path, family: 'unix', port: -1 };
}

/** The address a listening socket is bound to, as `server.address()` returns it (family `unix`, port -1: a path). */
export interface SockName {
  address: string;
  family: string;
  port: number;
}

// Worker -> master ---------------------------------------------------------------------------

/** Asks the master for a listening socket; answered by `listen-reply` with the same seq. */
export interface ListenRequest {
  cmd: 'NODE_clusterd:listen';
  seq: number;
  query: ListenQuery;
}

/** A server in the worker closed: stop sending it connections. */
export interface CloseServer {
  cmd: 'NODE_clusterd:close';
  key: string;
}

/** Acknowledges a handed-off connection; `accepted: false` sends it to another worker. */
export interface ConnectionAck {
  cmd: 'NODE_clusterd:ack';
  key: string;
  id: number;
  accepted: boolean;
  /** The worker's open connections, this one included: fresh load figures for `least`. */
  connections: number;
}

/**
 * `fair`: the worker closed its copy of the listening socket on reaching its connection limit, or
 * (`under`) has since dropped to its resume point and asks for a copy again. `epoch` is the one of
 * the master's last accept/limit/pause for this key, so that a report the master has already
 * overtaken is recognised as stale.
 */
export type AcceptorReport = AcceptorFull | AcceptorUnder | AcceptorLagging;

export interface AcceptorFull {
  cmd: 'NODE_clusterd:full';
  key: string;
  epoch: number;
  /** The server's open connections now. */
  connections: number;
  /**
   * The app's own `server.maxConnections` when that, below the master's limit, stopped it (null: the
   * limit did). Node refuses connections past it, so a worker there takes none while another has room.
   */
  ceiling: number | null;
}

/**
 * Back down to the resume point, with the load since the last report so far (AcceptorLoad's
 * figures): connections that came and went while it was full are churn, which the master can
 * raise the limit for at once instead of at the next report.
 */
export interface AcceptorUnder {
  cmd: 'NODE_clusterd:under';
  key: string;
  epoch: number;
  connections: number;
  peak: number;
  low: number;
  accepted: number;
  closed: number;
}

/**
 * `fair`: the worker's loop was held past LAGGING_MS (`lagging: true`; it closed its copy, if it had
 * one, and takes connections again only when the master sends one: while the others cannot take
 * them), or has turned on time for LAG_RECOVERED_MS since (`lagging: false`).
 */
export interface AcceptorLagging {
  cmd: 'NODE_clusterd:lagging';
  key: string;
  epoch: number;
  connections: number;
  lagging: boolean;
}

/** A loop held this long counts as lagging: for `fair`, a tick of the worker's shared timer this late; for `least`, a lag p99 past it (UNHEALTHY_LAG_MS). */
export const LAGGING_MS = 100;
/** ... and no longer once its ticks have come on time (under LAGGING_MS late) for this long: about one stats interval. */
export const LAG_RECOVERED_MS = 1000;

/**
 * `fair`: one server's open connections now, the most and fewest since the last report, and how many
 * it accepted and how many closed since then (sent when any of it changed).
 */
export interface AcceptorLoad {
  cmd: 'NODE_clusterd:load';
  key: string;
  connections: number;
  peak: number;
  low: number;
  accepted: number;
  closed: number;
}

/** The answer to MeasureLoop (same seq): where the loop spent the window. */
export interface LoopMeasured {
  cmd: 'NODE_clusterd:loop-reply';
  seq: number;
  breakdown: LoopBreakdown;
}

/** Every server the app started listens (under --wait-ready the app's own 'ready' counts instead). */
export interface Ready {
  cmd: 'NODE_clusterd:ready';
}

/**
 * After it first listened: every server the app listened on has closed by the app's own hand
 * (`listening: false`; a drain's closes are not reported), or one listens again (`true`). The
 * master counts the worker not ready in between.
 */
export interface Listening {
  cmd: 'NODE_clusterd:listening';
  listening: boolean;
}

/** One interval of loop and process measurements (every --stats-interval). */
export interface Stats {
  cmd: 'NODE_clusterd:stats';
  sample: LoopSample;
}

/** What a stopping worker still has open, by kind (src/worker/drain.ts counts it). */
export interface StillOpen {
  /** HTTP/1 requests being answered. */
  requests: number;
  /** HTTP/1 requests whose headers are still arriving (no response yet). */
  receiving: number;
  /** HTTP/1 keep-alive connections between requests, or not yet used (the drain closes them after a second). */
  idle: number;
  /** Connections upgraded to WebSocket (left to the app's shutdown handlers). */
  webSockets: number;
  /** Connections upgraded to another protocol. */
  upgraded: number;
  /** HTTP/2 sessions (told GOAWAY: they close once their streams are done). */
  http2Sessions: number;
  /** Every other connection: of net and tls servers, CONNECT tunnels, TLS handshakes. */
  other: number;
  /** onShutdown handlers not finished (they run one after another). */
  handlers: number;
}

/**
 * A stopping worker's drain, sent when it starts and then whenever what is open changes (at most
 * every 100 ms): what the master names in its log if --grace runs out.
 */
export interface Draining {
  cmd: 'NODE_clusterd:draining';
  open: StillOpen;
  /** The app listens for the kill signal: once drained, the app ends the process, not clusterd. */
  appExits: boolean;
  /** It does not, but it listens for this other stop signal (an app written for PM2 waits for SIGINT). */
  listensFor?: 'SIGINT' | 'SIGTERM';
}

/**
 * The app added a listener for SIGUSR1, the signal Node opens its inspector with: a SIGUSR1 from the
 * master would run the app's handler and open nothing, so the master asks with OpenInspector instead.
 */
export interface SignalTaken {
  cmd: 'NODE_clusterd:usr1-taken';
}

/**
 * The app listened with `exclusive: true` on a fixed port or a unix socket path (not with reusePort):
 * Node binds such a socket in the worker itself and never asks cluster._getServer, so the master
 * hears of it only from this. `sockname`: where it listens; null, with `error`, when the bind failed.
 */
export interface OwnListen {
  cmd: 'NODE_clusterd:own-listen';
  /** The worker's number for this listen, which own-close names. */
  id: number;
  /** What the app asked for: a host (null: none) and a port, or a unix socket's absolute path and port -1. */
  address: string | null;
  port: number;
  sockname: SockName | null;
  error: { code: string; errno: number } | null;
}

/** A server that listened with `exclusive: true` (OwnListen) closed. */
export interface OwnClose {
  cmd: 'NODE_clusterd:own-close';
  id: number;
}

/**
 * The app called process.disconnect(): the channel closes next, and the runtime, which takes a closed
 * channel for the master's death, ends the worker. Sent first so that the master can say why it went.
 */
export interface Disconnecting {
  cmd: 'NODE_clusterd:disconnecting';
}

export type WorkerMessage = ListenRequest | CloseServer | ConnectionAck | AcceptorReport | AcceptorLoad | LoopMeasured | Ready | Listening | Stats | Draining | SignalTaken | OwnListen | OwnClose | Disconnecting;

// Master -> worker ---------------------------------------------------------------------------

/** The answer to a ListenRequest. Shared mode sends the listening handle along with it. */
export interface ListenReply {
  cmd: 'NODE_clusterd:listen-reply';
  seq: number;
  /** 0 on success, else a negative libuv errno (UV_EADDRINUSE...), as Node's cluster does. */
  errno: number;
  /**
   * rr: connections come as `conn` messages; shared: the handle comes along; reuseport: bind your own;
   * fair: the handle comes along, to be listened on and closed (the socket then queues connections),
   * and each `accept` brings a copy to accept from.
   */
  mode: 'rr' | 'shared' | 'reuseport' | 'fair';
  sockname: SockName | null;
  /**
   * shared, fair: the socket is one systemd passed (socket activation), listening already; listen()
   * on it with this backlog, its own, never the app's (which would lower it for systemd's copy too).
   */
  backlog?: number;
}

/** How many connections a `fair` worker may hold before it stops accepting, and when it asks again. */
export interface AcceptLimit {
  epoch: number;
  /** Stop accepting (close the copy, report `full`) once the server holds this many; null: no limit. */
  limit: number | null;
  /** Once stopped at the limit, report `under` when the server is down to this many. */
  resumeAt: number;
  /**
   * Every worker that may accept is at its server's own maxConnections: accept past it, so that the
   * server refuses what it cannot hold as Node's does, rather than leave connections waiting in the
   * kernel's queue. False: stop at the server's maxConnections too, when it is below the limit.
   */
  overflow: boolean;
}

/** fair: how far past an even share a worker may go: 2 connections, or 1/16 of the share once that is larger. */
export function slack(share: number): number {
  return Math.max(2, Math.ceil(share / 16));
}

/** fair: a worker stopped at `limit` asks again (and the master sends it a copy) once it holds at most this many. */
export function resumeAt(limit: number): number {
  return Math.max(0, limit - slack(limit));
}

/**
 * fair: a worker stopped at its server's own maxConnections asks again as soon as it has room: one
 * below it (-1 for a maxConnections of 0: not until the app changes it; at 0, a copy sent back was
 * closed at once, again and again, two processes busy with it). No slack as for the limit: a worker
 * held below its room while the others are at theirs leaves connections refused that it could take.
 */
export function resumeBelowCeiling(ceiling: number): number {
  return ceiling - 1;
}

/** A new connection for the server registered under `key`; the socket travels as the handle. */
export interface NewConnection {
  cmd: 'NODE_clusterd:conn';
  id: number;
  key: string;
}

/** fair: accept from the listening socket that travels with this message, within the limit. */
export interface AcceptFrom extends AcceptLimit {
  cmd: 'NODE_clusterd:accept';
  key: string;
}

/** fair: a new limit for a worker that accepts; one already past it stops and reports `full`. */
export interface SetLimit extends AcceptLimit {
  cmd: 'NODE_clusterd:limit';
  key: string;
}

/** fair: stop accepting (close the copy), and do not ask again; `accept` will come when wanted. */
export interface PauseAccepting {
  cmd: 'NODE_clusterd:pause';
  key: string;
  epoch: number;
}

/** `clusterd loop`: measure where the loop spends the next `durationMs` (src/loop/phases.ts), answer with LoopMeasured. */
export interface MeasureLoop {
  cmd: 'NODE_clusterd:loop';
  seq: number;
  durationMs: number;
}

/** `clusterd loop`'s asker went away (Ctrl-C): end window `seq` now and answer with what it measured. */
export interface StopMeasuringLoop {
  cmd: 'NODE_clusterd:loop-stop';
  seq: number;
}

/**
 * A graceful stop: stop accepting, emit `signal` to the app's listeners and run its onShutdown
 * handlers, finish in-flight requests, close idle keep-alive sockets and GOAWAY HTTP/2 sessions,
 * then exit 0 (or let the app exit, when it listens for `signal`). The order is the README's.
 */
export interface Shutdown {
  cmd: 'NODE_clusterd:shutdown';
  /** --kill-signal: the event the app's process.on(signal) listeners get (never a real signal). */
  signal: NodeJS.Signals;
}

/**
 * fair: the worker held more connections than an even share of them plus slack all through its last
 * report: while its server holds more than `keep`, HTTP/1 responses that would keep their connection
 * open end it instead (not counting connections already told), so that the clients reconnect to the
 * others. null: stop. Idempotent: the same `keep` sent again ends nothing more.
 */
export interface EndConnections {
  cmd: 'NODE_clusterd:end-connections';
  key: string;
  keep: number | null;
}

/** Open the inspector from JavaScript (inspector.open()), for a worker whose app took SIGUSR1. */
export interface OpenInspector {
  cmd: 'NODE_clusterd:open-inspector';
}

export type MasterMessage = ListenReply | NewConnection | AcceptFrom | SetLimit | PauseAccepting | EndConnections | MeasureLoop | StopMeasuringLoop | Shutdown | OpenInspector;

/** The runtime's settings, passed to each worker in one environment variable. */
export interface WorkerSettings {
  waitReady: boolean;
  /** How often the loop sampler reports, in ms; 0 turns loop stats off. */
  statsIntervalMs: number;
  /**
   * How often the worker writes a heartbeat byte on fd 4, in ms; 0: never. The master judges the
   * silences (the watchdog, --report-blocked, the stall signal of `least` and `fair`).
   */
  heartbeatMs: number;
}

export const SETTINGS_ENV = 'CLUSTERD_SETTINGS';

/**
 * The pid of the worker the runtime runs in, set by its preload: CLUSTERD_WORKER_ID alone is inherited
 * by the processes the app forks, which are no workers; this names the one process (and its threads) that is.
 */
export const WORKER_PID_ENV = 'CLUSTERD_WORKER_PID';

/** CLUSTERD_WORKER_ID as the master sets it (1..N in decimal), or undefined for anything else. */
export function parseWorkerIdEnv(text: string | undefined): number | undefined {
  if (text === undefined || !/^[1-9]\d{0,5}$/.test(text)) return undefined;
  return Number(text);
}

/** `fair`: how often a worker reports its servers' counts (when they changed) and the master revises its limit. */
export const LOAD_REPORT_MS = 250;

/**
 * The node flags the master forks workers with so that it can open their inspector later (on a port
 * the system picks, its address on stderr for the master alone); a worker started with them may be
 * asked to open it itself (src/worker/inspector.ts).
 */
export const WORKER_INSPECTOR_ARGS: readonly string[] = ['--inspect-port=0', '--inspect-publish-uid=stderr'];

/** True for messages of clusterd's protocol (as opposed to the app's own IPC). */
/** Every command's prefix (see the top of this file). */
export const PROTOCOL_PREFIX = 'NODE_clusterd:';

export function isProtocolMessage(message: unknown): message is { cmd: string } {
  return (
    typeof message === 'object' &&
    message !== null &&
    typeof (message as { cmd?: unknown }).cmd === 'string' &&
    (message as { cmd: string }).cmd.startsWith(PROTOCOL_PREFIX)
  );
}
