// The master's parser for what crosses the IPC channel from a worker. The app runs in that process
// and can process.send() anything, including objects that look like clusterd's own messages, so
// every message is checked field by field against its type in src/protocol.ts before the master
// acts on it: a bad one is dropped (and counted), never cast. The schemas are tied to the protocol's
// interfaces (`satisfies`), so the two cannot drift apart without a compile error.
//
// zod is used here, in the master only: the worker runtime never loads it (it imports
// src/protocol.ts, which has no dependencies), so it costs the app nothing.
import { isIP } from 'node:net';
import { z } from 'zod';
import type { LoopBreakdown, LoopSample } from '../loop/types.js';
import { listenBase, MAX_SOCKET_PATH_BYTES, OWN_LISTEN_HOST, UV_UDP_IPV6ONLY, UV_UDP_REUSEADDR, type WorkerMessage } from '../protocol.js';

/** Keys are `address:port:addressType:fd:index`; an address is at most 45 characters (IPv6). */
const key = z.string().min(1).max(200);
const count = z.number().int().min(0).max(2 ** 31 - 1);
const seq = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
/** Any finite figure a sample carries (rates, ms, bytes, percentages). */
const figure = z.number().finite().min(0).max(Number.MAX_SAFE_INTEGER);

const backlog = z
  .union([count, z.literal(false)])
  .optional()
  // Node's listen() leaves `false` here when no backlog was given (net.js toNumber).
  .transform((backlog) => (backlog === false ? undefined : backlog));

/**
 * A unix socket path as the worker sends it: absolute (resolved against the worker's directory),
 * or abstract (a leading NUL), with no other NUL, and short enough for sun_path (108 bytes with
 * its terminator). The master binds it with the worker's own rights (same user): nothing the app
 * could not do itself, and a path that exists is refused (EADDRINUSE), never replaced.
 */
const socketPath = z
  .string()
  .refine((path) => /^(\/|\0)/.test(path) && !path.slice(1).includes('\0'), 'an absolute or abstract socket path')
  .refine((path) => Buffer.byteLength(path) <= MAX_SOCKET_PATH_BYTES, `a socket path of at most ${MAX_SOCKET_PATH_BYTES} bytes`);

// TCP, unix socket paths and UDP on a fixed port reach the master; the worker binds fds itself (and
// UDP on port 0), and a query for an fd would have the master wrap one of its own descriptors.
const listenQuery = z.union([
  z.strictObject({ key, address: z.string().max(200).nullable(), port: z.number().int().min(0).max(65535), addressType: z.union([z.literal(4), z.literal(6)]), flags: count, backlog }),
  z.strictObject({
    key,
    address: z.string().max(200),
    port: z.number().int().min(1).max(65535),
    addressType: z.union([z.literal('udp4'), z.literal('udp6')]),
    // libuv's UV_UDP_IPV6ONLY and UV_UDP_REUSEADDR, what Node's dgram asks for: nothing else.
    flags: count.refine((flags) => (flags & ~(UV_UDP_IPV6ONLY | UV_UDP_REUSEADDR)) === 0, 'UDP bind flags'),
  }),
  z.strictObject({
    key,
    address: socketPath,
    port: z.literal(-1),
    addressType: z.literal(-1),
    flags: count,
    backlog,
    readableAll: z.boolean().optional(),
    writableAll: z.boolean().optional(),
  }),
])
  // The key is what the master shares a socket by: one that is not this query's (with its index) would
  // take another address's socket (a UDP socket handed to an HTTP server's listen, crashing it for as
  // long as the master ran), or report a path that is not that socket's.
  .refine((query) => query.key.startsWith(listenBase(query) + ':') && /^(0|[1-9]\d{0,5})$/.test(query.key.slice(listenBase(query).length + 1)), 'a key that is not its address:port:type:index');

const lag = z.strictObject({ mean: figure, p50: figure, p90: figure, p99: figure, max: figure });

export const loopSample = z.strictObject({
  time: figure,
  intervalMs: figure,
  lag,
  elu: z.number().finite().min(0).max(1),
  loop: z.strictObject({ iterationsPerSec: figure, eventsPerSec: figure, eventsWaiting: figure }).nullable(),
  cpu: figure,
  memory: z.strictObject({ rss: figure, heapUsed: figure, heapTotal: figure, external: figure, arrayBuffers: figure }),
  // Counted by type name: a few dozen types at most in practice.
  resources: z.record(z.string().max(100), count).refine((value) => Object.keys(value).length <= 200, 'too many resource types'),
  http: z.strictObject({ rps: figure, requests: figure, inflight: figure, connections: figure }),
}) satisfies z.ZodType<LoopSample>;

const phase = z.strictObject({ ms: figure, msPerSec: figure, count });
const name = z.string().max(500);

export const loopBreakdown = z.strictObject({
  durationMs: figure,
  phases: z.strictObject({ timers: phase, pending: phase, poll: phase, check: phase, close: phase, nextTick: phase, microtasks: phase, idle: phase }),
  iterationsPerSec: figure,
  callbacks: z
    .array(z.strictObject({ type: z.string().max(100), function: name, url: z.string().max(2000), line: count, count, totalMs: figure, maxMs: figure }))
    .max(100),
  overheadPct: figure,
}) satisfies z.ZodType<LoopBreakdown>;

const stillOpen = z.strictObject({ requests: count, receiving: count, idle: count, webSockets: count, upgraded: count, http2Sessions: count, other: count, handlers: count });

// An exclusive listen the worker bound itself: the master repeats its address in the ready line,
// `status` and the API's addresses, so it is held to what a bind gives: on a fixed port, an IP of the
// family named, on that port; on a unix socket (port -1), the path asked for, absolute or abstract, as
// every socket path the master takes.
const ownListen = z
  .strictObject({
    cmd: z.literal('NODE_clusterd:own-listen'),
    id: seq,
    address: z.string().max(200).nullable(),
    port: z.number().int().min(-1).max(65535).refine((port) => port !== 0, 'a fixed port (port 0 is never reported)'),
    sockname: z.strictObject({ address: z.string().max(200), family: z.enum(['IPv4', 'IPv6', 'unix']), port: z.number().int().min(-1).max(65535) }).nullable(),
    // An errno's name (EADDRINUSE): the master repeats it in the line of a failed boot.
    error: z.strictObject({ code: z.string().regex(/^[A-Z0-9_]{1,50}$/), errno: z.number().int() }).nullable(),
  })
  .superRefine(({ address, port, sockname }, context) => {
    const issue = (path: string[], message: string): void => context.addIssue({ code: 'custom', path, message });
    // The master repeats the address in the ready line, status and a failed boot's line: a host name or
    // an IP address (a v6 zone too), a path without control characters; nothing that could forge a line.
    // eslint-disable-next-line no-control-regex -- control characters are what it refuses
    if (address !== null && /[\u0000-\u001f\u007f-\u009f]/.test(address.slice(1))) issue(['address'], 'no control characters');
    if (port !== -1 && address !== null && !OWN_LISTEN_HOST.test(address)) issue(['address'], 'a host name or an IP address');
    if (port === -1) {
      if (!socketPath.safeParse(address).success) issue(['address'], 'an absolute or abstract socket path, of at most 108 bytes');
      if (sockname && (sockname.family !== 'unix' || sockname.port !== -1 || sockname.address !== address)) issue(['sockname'], 'the socket path asked for, family unix, port -1');
    } else if (sockname) {
      if (sockname.family === 'unix' || isIP(sockname.address) !== (sockname.family === 'IPv4' ? 4 : 6)) issue(['sockname', 'address'], 'an IP address of its family');
      if (sockname.port !== port) issue(['sockname', 'port'], 'the port asked for');
    }
  });

const workerMessage = z.discriminatedUnion('cmd', [
  z.strictObject({ cmd: z.literal('NODE_clusterd:listen'), seq, query: listenQuery }),
  z.strictObject({ cmd: z.literal('NODE_clusterd:close'), key }),
  z.strictObject({ cmd: z.literal('NODE_clusterd:ack'), key, id: seq, accepted: z.boolean(), connections: count }),
  z.strictObject({ cmd: z.literal('NODE_clusterd:full'), key, epoch: seq, connections: count, ceiling: count.nullable() }),
  z.strictObject({ cmd: z.literal('NODE_clusterd:under'), key, epoch: seq, connections: count, peak: count, low: count, accepted: count, closed: count }),
  z.strictObject({ cmd: z.literal('NODE_clusterd:lagging'), key, epoch: seq, connections: count, lagging: z.boolean() }),
  z.strictObject({ cmd: z.literal('NODE_clusterd:load'), key, connections: count, peak: count, low: count, accepted: count, closed: count }),
  z.strictObject({ cmd: z.literal('NODE_clusterd:loop-reply'), seq, breakdown: loopBreakdown }),
  z.strictObject({ cmd: z.literal('NODE_clusterd:ready') }),
  z.strictObject({ cmd: z.literal('NODE_clusterd:listening'), listening: z.boolean() }),
  z.strictObject({ cmd: z.literal('NODE_clusterd:stats'), sample: loopSample }),
  z.strictObject({ cmd: z.literal('NODE_clusterd:draining'), open: stillOpen, appExits: z.boolean(), listensFor: z.enum(['SIGINT', 'SIGTERM']).optional() }),
  z.strictObject({ cmd: z.literal('NODE_clusterd:usr1-taken') }),
  ownListen,
  z.strictObject({ cmd: z.literal('NODE_clusterd:own-close'), id: seq }),
  z.strictObject({ cmd: z.literal('NODE_clusterd:disconnecting') }),
]) satisfies z.ZodType<WorkerMessage>;

/** A worker's message, or why it is not one (one line, for the log). */
export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

/** Checks one message whose `cmd` starts with `clusterd:`. */
export function parseWorkerMessage(raw: unknown): Parsed<WorkerMessage> {
  const result = workerMessage.safeParse(raw);
  return result.success ? { ok: true, value: result.data as WorkerMessage } : { ok: false, error: describe(result.error) };
}

/** `sample.lag.p99: expected number, received string`: the first problem, with its path. */
function describe(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid';
  const path = issue.path.map(String).join('.');
  return `${path ? `${path}: ` : ''}${issue.message}`;
}
