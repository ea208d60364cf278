import { isSocketPath, isUdp, type ListenQuery } from '../../protocol.js';
import { DispatchBalancer } from './dispatch.js';
import { FairBalancer } from './fair.js';
import { leastConnections } from './least.js';
import { roundRobin } from './round-robin.js';
import { HeldSocketBalancer } from './shared.js';
import { stickyByAddress } from './sticky.js';
import type { BalanceMode, Balancer, BalancerContext } from './types.js';

/** Adding a strategy means one line here; the supervisor never names a balancer. */
const factories: Record<BalanceMode, (query: ListenQuery, context: BalancerContext) => Promise<Balancer>> = {
  fair: (query) => FairBalancer.open(query),
  rr: (query) => DispatchBalancer.open(query, roundRobin),
  least: (query) => DispatchBalancer.open(query, leastConnections),
  sticky: (query, context) => DispatchBalancer.open(query, stickyByAddress, context),
  shared: (query) => HeldSocketBalancer.open(query, 'shared'),
  reuseport: (query) => HeldSocketBalancer.open(query, 'reuseport'),
};

/**
 * A unix socket has no client address to hash and no SO_REUSEPORT groups: there, sticky
 * balances as rr and reuseport shares one socket as shared does (an inherited socket too).
 */
const forSocketPaths: Partial<Record<BalanceMode, BalanceMode>> = { sticky: 'rr', reuseport: 'shared' };

/** No configured ids (tests that open a balancer alone): sticky hashes over the workers accepting. */
const alone: BalancerContext = { ids: () => [], warn: () => {} };

export function openBalancer(mode: BalanceMode, query: ListenQuery, context: BalancerContext = alone): Promise<Balancer> {
  // A UDP socket is shared whatever the mode: datagrams are not connections to balance.
  if (isUdp(query)) return HeldSocketBalancer.open(query, 'shared');
  return factories[(isSocketPath(query) && forSocketPaths[mode]) || mode](query, context);
}

export { BALANCE_MODES, type BalanceMode, type Balancer, type BalancedWorker, type BalancerContext } from './types.js';
