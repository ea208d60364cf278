// Bearer-token check for the TCP listener. The unix socket needs none: only its owner can reach it.
import * as grpc from '@grpc/grpc-js';
import { createHash, timingSafeEqual } from 'node:crypto';
import { WrongTokenBudget } from './wrong-tokens.js';

/** Metadata key and scheme a client sends: `authorization: Bearer <token>`. */
export const AUTH_METADATA_KEY = 'authorization';
const BEARER = 'Bearer ';

/** Compares in constant time; hashing first hides the token's length too. */
export function tokenMatches(expected: string, presented: string): boolean {
  const a = createHash('sha256').update(expected).digest();
  const b = createHash('sha256').update(presented).digest();
  return timingSafeEqual(a, b);
}

/** The token carried by a call's metadata, or null. */
export function bearerToken(metadata: grpc.Metadata): string | null {
  const value = metadata.get(AUTH_METADATA_KEY)[0];
  // The scheme is case-insensitive (RFC 9110), the token not.
  if (typeof value !== 'string' || value.slice(0, BEARER.length).toLowerCase() !== BEARER.toLowerCase()) return null;
  return value.slice(BEARER.length);
}

/**
 * A server interceptor that ends every call without the right token with UNAUTHENTICATED before
 * any handler runs, so methods added later are covered without a line of their own. Each call
 * that passes tells `onAuthenticated` which connection it came on (the ConnectionGuard in
 * guard.ts lifts that connection's deadline). A source that spent its budget of wrong tokens
 * (wrong-tokens.ts) has its calls refused unchecked, with RESOURCE_EXHAUSTED, until it refills.
 */
export function requireToken(
  token: string,
  onAuthenticated: (connection: { remoteAddress?: string | undefined; remotePort?: number | undefined }) => void = () => {},
  onRefused: (source: string, why: Refusal) => void = () => {},
  budget: WrongTokenBudget = new WrongTokenBudget(),
): grpc.ServerInterceptor {
  return (_method, call) =>
    new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        next({
          onReceiveMetadata: (metadata, forward) => {
            const connection = call.getConnectionInfo();
            const { source, retryAfterS } = budget.gate(connection.remoteAddress);
            if (retryAfterS > 0) {
              onRefused(source, 'throttled');
              call.sendStatus({
                code: grpc.status.RESOURCE_EXHAUSTED,
                details: `too many wrong control tokens from ${source}: its next call is checked in ${retryAfterS} s`,
              });
              return;
            }
            const presented = bearerToken(metadata);
            if (presented !== null && tokenMatches(token, presented)) {
              onAuthenticated(connection);
              forward(metadata);
              return;
            }
            if (presented !== null) budget.spend(source);
            onRefused(source, presented === null ? 'missing' : 'wrong');
            call.sendStatus({
              code: grpc.status.UNAUTHENTICATED,
              details: presented === null ? 'missing `authorization: Bearer <token>` metadata' : 'wrong control token',
            });
          },
        });
      },
    });
}

/** Why a call was refused: no bearer token, another one, or not checked (its source's wrong tokens spent). */
export type Refusal = 'missing' | 'wrong' | 'throttled';

/** How often each source's refused calls are said, at most. */
export const REFUSALS_REPORT_MS = 60_000;

/**
 * Says refused calls in the master's log without letting them flood it: the first from a source
 * (an IPv4 address, an IPv6 /64) at once, then at most one line a minute for it with how many more
 * there were. A brute force or a client with a stale token leaves a trace; 13,000 calls a second
 * leave one line a minute.
 */
export class RefusalLog {
  readonly #say: (source: string, counts: Record<Refusal, number>, first: boolean) => void;
  readonly #sources = new Map<string, { counts: Record<Refusal, number>; timer: NodeJS.Timeout }>();
  readonly #intervalMs: number;

  constructor(say: (source: string, counts: Record<Refusal, number>, first: boolean) => void, intervalMs = REFUSALS_REPORT_MS) {
    this.#say = say;
    this.#intervalMs = intervalMs;
  }

  refused(source: string, why: Refusal): void {
    const known = this.#sources.get(source);
    if (known) {
      known.counts[why]++;
      return;
    }
    this.#say(source, { ...noRefusals(), [why]: 1 }, true);
    const entry = { counts: noRefusals(), timer: setTimeout(() => this.#report(source), this.#intervalMs).unref() };
    this.#sources.set(source, entry);
  }

  #report(source: string): void {
    const entry = this.#sources.get(source)!;
    if (entry.counts.missing + entry.counts.wrong + entry.counts.throttled === 0) {
      this.#sources.delete(source);
      return;
    }
    this.#say(source, entry.counts, false);
    entry.counts = noRefusals();
    entry.timer.refresh();
  }

  close(): void {
    for (const { timer } of this.#sources.values()) clearTimeout(timer);
    this.#sources.clear();
  }
}

function noRefusals(): Record<Refusal, number> {
  return { missing: 0, wrong: 0, throttled: 0 };
}

/** Metadata for a client call to a TCP listener. */
export function tokenMetadata(token: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set(AUTH_METADATA_KEY, `${BEARER}${token}`);
  return metadata;
}
