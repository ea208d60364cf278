// One-line warnings at start for what others may reach: the TCP control listener and the metrics
// endpoint bound beyond loopback, and a control token short enough to guess. (The dashboard's own
// is exposureWarning in dashboard/server.ts.) /livez and /readyz get none: --health is meant for
// probes from the pod network, so it is bound to the pod's address on purpose, and says only
// whether workers are ready.
import { isLoopback } from '../address.js';
import { formatControlAddress, type TcpAddress } from '../control/options.js';

/** Shorter control tokens are warned of: a token of 16 random characters is out of reach of guessing, even at a guess a second for years. */
export const MIN_CONTROL_TOKEN_LENGTH = 16;

/** Why the --control TCP listener bound at `address` is exposed; null on loopback. */
export function controlExposure(address: TcpAddress): string | null {
  if (isLoopback(address.host)) return null;
  return `the control listener on ${formatControlAddress(address)} is not on a loopback address: anyone who can reach it may try tokens, and the token travels in clear text (HTTP/2 without TLS); keep it on a trusted network or behind a tunnel`;
}

/** Why the --metrics endpoint bound at `address` is exposed; null on loopback. */
export function metricsExposure(address: TcpAddress): string | null {
  if (isLoopback(address.host)) return null;
  return `the metrics endpoint on ${formatControlAddress(address)} is not on a loopback address: anyone who can reach it reads the cluster's name, entry path, pids and load, without a token; keep it on 127.0.0.1 or a network only the scraper reaches`;
}

/** Why a --control-token or --dashboard-token (`which`) is weak; null if it is long enough. */
export function tokenWeakness(which: 'control' | 'dashboard', token: string): string | null {
  if (token.length >= MIN_CONTROL_TOKEN_LENGTH) return null;
  return `the ${which} token is ${token.length} ${token.length === 1 ? 'character' : 'characters'} long: one shorter than ${MIN_CONTROL_TOKEN_LENGTH} can be guessed (make one with \`openssl rand -hex 16\`)`;
}
