// parseFeedMessage: what `clusterd dashboard` accepts from a master. A well-formed snapshot and
// update pass as they are; each malformed shape is one ClusterdError naming the field.
import test from 'ava';
import { parseFeedMessage } from '../../src/dashboard/schema.js';
import { ClusterdError } from '../../src/errors.js';
import { MAX_OTHERS } from '../../src/dashboard/feed.js';
import { snapshot, update } from './helpers/messages.js';

test('a snapshot and an update pass as they are', (t) => {
  t.deepEqual(parseFeedMessage(JSON.stringify(snapshot())), snapshot());
  t.deepEqual(parseFeedMessage(JSON.stringify(update())), update());
  // Fields a newer master adds are dropped, not refused.
  t.is((parseFeedMessage(JSON.stringify({ ...snapshot(), futureField: 1 })) as unknown as Record<string, unknown>).futureField, undefined);
});

test('a marker of a kind this version does not know (from a newer master) is dropped, the others kept', (t) => {
  const message = snapshot();
  const known = message.markers[0]!;
  const json = JSON.stringify({ ...message, markers: [{ ...known, id: 90, kind: 'party' }, known] });
  t.deepEqual(parseFeedMessage(json).markers, [known]);
});

test('more other processes than this version keeps (from a newer master): the newest kept', (t) => {
  const message = snapshot();
  const others = Array.from({ length: MAX_OTHERS + 3 }, (_, i) => ({ pid: 1000 + i, state: 'stopping', connections: 0 }));
  const json = JSON.stringify({ ...message, workers: [{ ...message.workers[0]!, others }, ...message.workers.slice(1)] });
  t.deepEqual(parseFeedMessage(json).workers[0]!.others, others.slice(-MAX_OTHERS));
});

test('from a master older than totals.blocked (a blocked worker counted ready), ready and blocked are counted from the rows, as status does', (t) => {
  const message = snapshot();
  const { blocked: _, ...older } = message.totals;
  const workers = [{ ...message.workers[0]!, blockedMs: 1711 }, message.workers[1]!];
  const parsed = parseFeedMessage(JSON.stringify({ ...message, totals: older, workers }));
  t.like(parsed.totals, { ready: 1, blocked: 1 });
  // A master that has the field: its `ready` counts blocked workers too (as older masters did); they are taken out.
  t.like(parseFeedMessage(JSON.stringify({ ...message, totals: { ...message.totals, ready: 2, blocked: 1 }, workers })).totals, { ready: 1, blocked: 1 });
  // ... read as sent, not counted again from the rows (counts the rows would not give).
  t.like(parseFeedMessage(JSON.stringify({ ...message, totals: { ...message.totals, ready: 2, blocked: 2 }, workers })).totals, { ready: 0, blocked: 2 });
  // A master built between stop 36 and wireTotals sent `ready` without the blocked ones: not taken out twice.
  t.like(parseFeedMessage(JSON.stringify({ ...message, totals: { ...message.totals, ready: 1, blocked: 1 }, workers })).totals, { ready: 1, blocked: 1 });
});

const malformed = test.macro({
  exec(t, json: string, field: RegExp) {
    const error = t.throws(() => parseFeedMessage(json), { instanceOf: ClusterdError });
    t.is(error!.code, 'ERR_CLUSTERD_CONTROL');
    t.regex(error!.message, /^the cluster sent a malformed dashboard message: /);
    t.regex(error!.message, field);
    t.false(error!.message.includes('\n'), 'one line');
  },
  title: (what = '') => `refused: ${what}`,
});

const DELETE = Symbol('delete');

/** The snapshot with the field at `path` set to `value` (or deleted). */
function edited(path: readonly (string | number)[], value: unknown): string {
  const message: unknown = snapshot();
  let node = message as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) node = node[key] as Record<string | number, unknown>;
  const last = path.at(-1)!;
  if (value === DELETE) delete node[last];
  else node[last] = value;
  return JSON.stringify(message);
}

const bucket = snapshot().workers[0]!.buckets[0]!;
const marker = snapshot().markers[0]!;
const worker = snapshot().workers[0]!;

test('not JSON', malformed, '{"type":', /not JSON/);
test('not an object', malformed, '42', /the message/);
test('null', malformed, 'null', /the message/);
test('an unknown type', malformed, edited(['type'], 'gossip'), /type/);
test('a snapshot without its name', malformed, edited(['name'], DELETE), /name/);
test('a name too long', malformed, edited(['name'], 'x'.repeat(65)), /name/);
test('now as a string', malformed, edited(['now'], '1796000000000'), /now/);
test('totals without ready', malformed, edited(['totals', 'ready'], DELETE), /totals\.ready/);
test('workers not an array', malformed, edited(['workers'], {}), /workers/);
test('worker id 0', malformed, edited(['workers', 0, 'id'], 0), /workers\.0\.id/);
test('a fractional worker id', malformed, edited(['workers', 1, 'id'], 1.5), /workers\.1\.id/);
test('a negative restart count', malformed, edited(['workers', 0, 'restarts'], -1), /workers\.0\.restarts/);
test('latest neither figures nor null', malformed, edited(['workers', 0, 'latest'], 'none'), /workers\.0\.latest/);
test('a bucket without its time', malformed, edited(['workers', 0, 'buckets', 0, 't'], DELETE), /workers\.0\.buckets\.0\.t/);
test('more buckets than a window holds', malformed, edited(['workers', 0, 'buckets'], Array.from({ length: 452 }, (_, i) => ({ ...bucket, t: i * 2000 }))), /workers\.0\.buckets/);
test('more workers than a cluster may have', malformed, edited(['workers'], Array.from({ length: 1025 }, () => worker)), /workers/);
test('a blocked site without its line', malformed, edited(['workers', 0, 'blockedSites', 0, 'line'], DELETE), /blockedSites\.0\.line/);
test('a marker kind too long', malformed, edited(['markers', 0, 'kind'], 'x'.repeat(41)), /markers\.0\.kind/);
test('a marker text too long', malformed, edited(['markers', 0, 'text'], 'x'.repeat(10_001)), /markers\.0\.text/);
test('a marker stack of numbers', malformed, edited(['markers', 0, 'stack'], [1, 2]), /markers\.0\.stack\.0/);
test('more markers than the master keeps', malformed, edited(['markers'], Array.from({ length: 1001 }, (_, i) => ({ ...marker, id: i + 1 }))), /markers/);
test('a marker for worker 2000', malformed, edited(['markers', 0, 'worker'], 2000), /markers\.0\.worker/);
test('an update missing its workers', malformed, JSON.stringify({ ...update(), workers: undefined }), /workers/);
