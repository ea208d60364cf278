// The control-plane API loads from the build's JSON descriptor (proto/clusterd.json) when it is
// current, and from the .proto itself when the descriptor is missing or older than the .proto.
import test from 'ava';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadRoot } from '../../src/control/proto.js';

const PROTO = 'syntax = "proto3";\npackage demo.v1;\nmessage FromProto { string snake_field = 1; }\n';
// What scripts/build-proto.mjs would write for a different message, to tell the sources apart.
const DESCRIPTOR = { nested: { demo: { nested: { v1: { nested: { FromJson: { fields: { id: { type: 'uint32', id: 1 } } } } } } } } };

function scratch(t: { teardown(fn: () => void): void }): { proto: string; json: string } {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-proto-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const proto = join(dir, 'demo.proto');
  const json = join(dir, 'demo.json');
  writeFileSync(proto, PROTO);
  writeFileSync(json, JSON.stringify(DESCRIPTOR));
  return { proto, json };
}

test('a descriptor at least as new as the .proto is what loads', (t) => {
  const { proto, json } = scratch(t);
  utimesSync(proto, 1000, 1000);
  utimesSync(json, 2000, 2000);
  const root = loadRoot(proto, json);
  t.truthy(root.lookup('demo.v1.FromJson'));
  t.is(root.lookup('demo.v1.FromProto'), null);
});

test('a descriptor older than the .proto is passed over: the .proto is parsed, fields in camelCase', (t) => {
  const { proto, json } = scratch(t);
  utimesSync(json, 1000, 1000);
  utimesSync(proto, 2000, 2000);
  const root = loadRoot(proto, json);
  t.is(root.lookup('demo.v1.FromJson'), null);
  t.deepEqual(Object.keys(root.lookupType('demo.v1.FromProto').fields), ['snakeField']);
});

test('a missing descriptor: the .proto is parsed', (t) => {
  const { proto, json } = scratch(t);
  rmSync(json);
  t.truthy(loadRoot(proto, json).lookup('demo.v1.FromProto'));
});
