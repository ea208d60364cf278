// The one place where clusterd's errors meet gRPC statuses: the master turns a ClusterdError into
// a status (code, message, trailing metadata), and a client turns a status back into a
// ClusterdError with the exit code the CLI should use. proto/clusterd.proto documents the codes.
import * as grpc from '@grpc/grpc-js';
import { BootError, ClusterdError, ERROR_CODES, UsageError, isErrorCode, type ErrorCode } from '../errors.js';

/** Trailing metadata: clusterd's own error code, on every error the master raises itself. */
export const ERROR_CODE_KEY = 'clusterd-error-code';
/** Trailing metadata: a failed worker's last output, UTF-8 JSON array of strings. */
export const LAST_OUTPUT_KEY = 'clusterd-last-output-bin';

/** The last output travels in a trailer: bounded, whatever the app printed. */
export const MAX_LAST_OUTPUT_BYTES = 16 * 1024;
const MAX_LINE_CHARS = 2_000;

/** The gRPC status a ClusterdError travels as (src/errors.ts, ERROR_CODES). */
function grpcStatus(error: ClusterdError): grpc.status {
  return grpc.status[ERROR_CODES[error.code].grpc];
}

/** The status a handler answers with for `error`: never throws, whatever it is given. */
export function toServiceError(error: unknown): Partial<grpc.StatusObject> {
  if (!(error instanceof ClusterdError)) {
    return { code: grpc.status.INTERNAL, details: `the master failed: ${(error as Error)?.message ?? String(error)}` };
  }
  const metadata = new grpc.Metadata();
  metadata.set(ERROR_CODE_KEY, error.code);
  if (error instanceof BootError && error.lastOutput.length > 0) {
    metadata.set(LAST_OUTPUT_KEY, Buffer.from(JSON.stringify(boundedOutput(error.lastOutput))));
  }
  // Metadata and grpc-js's status line are one line of text; the first line is the message.
  return { code: grpcStatus(error), details: error.message.split('\n')[0] ?? '', metadata };
}

/** The latest lines that fit MAX_LAST_OUTPUT_BYTES, each cut to MAX_LINE_CHARS. */
export function boundedOutput(lines: readonly string[]): string[] {
  const kept: string[] = [];
  let bytes = 2;
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!.length > MAX_LINE_CHARS ? `${lines[i]!.slice(0, MAX_LINE_CHARS)}...` : lines[i]!;
    bytes += Buffer.byteLength(JSON.stringify(line)) + 1;
    if (bytes > MAX_LAST_OUTPUT_BYTES) break;
    kept.unshift(line);
  }
  return kept;
}

/** ClusterdError code of a target nobody answers on. */
export const NOT_RUNNING = 'ERR_CLUSTERD_NOT_RUNNING' satisfies ErrorCode;

/** A failed call as the one line a CLI user should see, with the exit code to leave with. */
export function controlError(error: grpc.ServiceError | null, address: string): ClusterdError {
  const own = error?.metadata?.get(ERROR_CODE_KEY)[0];
  if (error && typeof own === 'string') return masterError(error, own);
  // grpc-js says "No connection established. Last error: Error: connect ECONNREFUSED ... Resolution note: ".
  const details = (error?.details || error?.message || 'no reply')
    .replace(/\s*Resolution note:.*$/s, '')
    .replace(/^No connection established\. Last error: (?:Error: )?/, '')
    .replace(/\.$/, '');
  const tooLarge = tooLargeReply(details);
  if (tooLarge) return new ClusterdError('ERR_CLUSTERD_CONTROL', `the cluster at ${address} sent a reply too large for this client (${tooLarge.bytes} bytes, past its limit of ${tooLarge.limit})`, { cause: error });
  if (notGrpc(details)) return new ClusterdError(NOT_RUNNING, `no clusterd control plane at ${address} (${details})`, { cause: error });
  switch (error?.code) {
    case grpc.status.UNAVAILABLE:
      return new ClusterdError(NOT_RUNNING, `no cluster answers at ${address} (${details})`, { cause: error });
    case grpc.status.DEADLINE_EXCEEDED:
      return new ClusterdError('ERR_CLUSTERD_TIMEOUT', `the cluster at ${address} did not answer in time`, { cause: error });
    case grpc.status.UNAUTHENTICATED:
      return new ClusterdError('ERR_CLUSTERD_UNAUTHENTICATED', `the cluster at ${address} refused the call: ${details}`, { cause: error });
    case grpc.status.UNIMPLEMENTED:
      return new ClusterdError('ERR_CLUSTERD_UNIMPLEMENTED', `the cluster at ${address} runs a clusterd without this operation (${details})`, { cause: error });
    default:
      return new ClusterdError('ERR_CLUSTERD_CONTROL', `control call to ${address} failed: ${details}`, { cause: error });
  }
}

/**
 * What grpc-js says of an HTTP/2 reply that is no gRPC (a web server, a proxy's error page): an HTTP
 * status other than 200 (a 404 reads UNIMPLEMENTED, which was taken for an older clusterd without the
 * operation), a 200 that ends without a grpc-status, or a body read as gRPC frames (its first bytes
 * taken for a length past the 64 MiB limit, and past any a clusterd reply may have: tooLargeReply;
 * or a message that does not parse). A clusterd master answers with a grpc-status and messages of a
 * plausible length: something else listens there.
 */
const NOT_GRPC = [/^Received HTTP status code \d+$/, /\(Call ended without gRPC status\)$/, /^Received message larger than max /, /^Response message parsing error/];

/**
 * Past this, a message's length is no clusterd reply's but text read as a gRPC frame: any printable
 * byte (0x20 and up) read as the length's first byte makes 512 MiB or more. Below it, a real master's
 * reply may pass the client's limit (a Dashboard snapshot is up to ~100 KB per worker id).
 */
const IMPLAUSIBLE_LENGTH = 0x2000_0000;

/** grpc-js's "Received message larger than max (N vs. LIMIT)" for a length a clusterd reply may have: N and LIMIT. */
function tooLargeReply(details: string): { bytes: number; limit: number } | null {
  const match = /^Received message larger than max \((\d+) vs\.? (\d+)\)/.exec(details);
  if (!match) return null;
  const [bytes, limit] = [Number(match[1]), Number(match[2])];
  return bytes < IMPLAUSIBLE_LENGTH ? { bytes, limit } : null;
}

function notGrpc(details: string): boolean {
  return NOT_GRPC.some((pattern) => pattern.test(details));
}

/**
 * An error the master raised: its own message and code, so the exit code comes from the one table
 * (ERROR_CODES); a failed boot comes back a BootError, a refused request a UsageError. A code this
 * client does not know (a newer master) is an internal error, with the master's message.
 */
function masterError(error: grpc.ServiceError, code: string): ClusterdError {
  const message = error.details || error.message;
  if (code === 'ERR_CLUSTERD_BOOT') return new BootError(message, lastOutputOf(error.metadata));
  // A request the master refused (`scale 0`, a count below one): the same class as one refused here.
  if (code === 'ERR_CLUSTERD_USAGE') return new UsageError(message, { cause: error });
  return new ClusterdError(isErrorCode(code) ? code : 'ERR_CLUSTERD_CONTROL', message, { cause: error });
}

function lastOutputOf(metadata: grpc.Metadata): string[] {
  const raw = metadata.get(LAST_OUTPUT_KEY)[0];
  if (!Buffer.isBuffer(raw)) return [];
  try {
    const lines: unknown = JSON.parse(raw.toString('utf8'));
    return Array.isArray(lines) ? lines.filter((line): line is string => typeof line === 'string') : [];
  } catch {
    return [];
  }
}

/** For ControlOperations implementations: the error for a worker id the cluster does not have. */
export function noSuchWorker(id: number, name: string, ids: readonly number[]): ClusterdError {
  const have = ids.length === 0 ? 'it has none' : `workers: ${ids.join(', ')}`;
  return new ClusterdError('ERR_CLUSTERD_NO_WORKER', `no worker ${id} in cluster ${name} (${have})`);
}
