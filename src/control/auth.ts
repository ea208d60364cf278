// Bearer-token check for the TCP listener. The unix socket needs none: only its owner can reach it.
import * as grpc from '@grpc/grpc-js';
import { createHash, timingSafeEqual } from 'node:crypto';

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
 * guard.ts lifts that connection's deadline).
 */
export function requireToken(token: string, onAuthenticated: (connection: { remoteAddress?: string | undefined; remotePort?: number | undefined }) => void = () => {}): grpc.ServerInterceptor {
  return (_method, call) =>
    new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        next({
          onReceiveMetadata: (metadata, forward) => {
            const presented = bearerToken(metadata);
            if (presented !== null && tokenMatches(token, presented)) {
              onAuthenticated(call.getConnectionInfo());
              forward(metadata);
              return;
            }
            call.sendStatus({
              code: grpc.status.UNAUTHENTICATED,
              details: presented === null ? 'missing `authorization: Bearer <token>` metadata' : 'wrong control token',
            });
          },
        });
      },
    });
}

/** Metadata for a client call to a TCP listener. */
export function tokenMetadata(token: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set(AUTH_METADATA_KEY, `${BEARER}${token}`);
  return metadata;
}
