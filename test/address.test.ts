// The address rules every part of clusterd shares (src/address.ts).
import test from 'ava';
import { hostsShareAddress, isWildcardHost } from '../src/address.js';

test('isWildcardHost: no host (null or empty), 0.0.0.0 and ::; no other', (t) => {
  for (const host of [null, '', '0.0.0.0', '::']) t.true(isWildcardHost(host), String(host));
  for (const host of ['127.0.0.1', '::1', 'localhost', '0.0.0.1']) t.false(isWildcardHost(host), host);
});

test('hostsShareAddress: the same host, or a wildcard on either side', (t) => {
  for (const [a, b] of [['127.0.0.1', '127.0.0.1'], [null, '10.0.0.5'], ['::', '127.0.0.1'], ['0.0.0.0', '::1']] as const) {
    t.true(hostsShareAddress(a, b) && hostsShareAddress(b, a), `${a} ${b}`);
  }
  for (const [a, b] of [['127.0.0.1', '10.0.0.5'], ['127.0.0.1', '::1'], ['localhost', '127.0.0.1']] as const) {
    t.false(hostsShareAddress(a, b) || hostsShareAddress(b, a), `${a} ${b}`);
  }
});
