import type { ListenQuery } from '../../protocol.js';
import { RoundRobinBalancer } from './round-robin.js';
import { SharedBalancer } from './shared.js';
import type { BalanceMode, Balancer } from './types.js';

/** Adding a strategy means one line here; the supervisor never names a balancer. */
const factories: Record<BalanceMode, (query: ListenQuery) => Promise<Balancer>> = {
  rr: (query) => RoundRobinBalancer.open(query),
  shared: (query) => SharedBalancer.open(query),
};

export function openBalancer(mode: BalanceMode, query: ListenQuery): Promise<Balancer> {
  return factories[mode](query);
}

export { BALANCE_MODES, type BalanceMode, type Balancer, type BalancedWorker } from './types.js';
