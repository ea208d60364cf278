// The open-loop generator's pure parts: the histogram, the due-time arithmetic, the response parser, the tally.
import test from 'ava';
import { bucketOf, bucketTop, Histogram } from '../../../scripts/bench/load/histogram.js';
import { ProtocolError, requestBytes, ResponseParser } from '../../../scripts/bench/load/http-response.js';
import { parseConfig } from '../../../scripts/bench/load/open-loop-protocol.js';
import { lowerBoundsOf, Tally } from '../../../scripts/bench/load/open-loop-tally.js';
import { dueAtMs, dueBy, judgeRate, scheduledCount, waitMs } from '../../../scripts/bench/load/schedule.js';

test('histogram buckets are contiguous, exact below 128 us, and at most 1/64 of a value wide', (t) => {
  let previous = -1;
  for (let value = 0; value < 2_000_000; value += value < 4096 ? 1 : 97) {
    const bucket = bucketOf(value);
    t.true(bucket === previous || bucket === previous + 1 || value >= 4096, `bucket of ${value}`);
    t.true(bucketTop(bucket) >= value && (bucket === 0 || bucketTop(bucket - 1) < value), `bounds of ${value}`);
    if (value < 128) t.is(bucketTop(bucket), value);
    else t.true(bucketTop(bucket) - bucketTop(bucket - 1) <= value / 64, `width at ${value}`);
    previous = bucket;
  }
});

test('histogram clamps what it cannot hold', (t) => {
  t.is(bucketOf(-5), 0);
  t.is(bucketOf(1e15), bucketOf(2 ** 31 - 1));
});

test('histogram percentiles: nearest rank, never below the true value, capped at the max', (t) => {
  const histogram = new Histogram();
  t.is(histogram.percentile(0.99), 0);
  for (let us = 1; us <= 10_000; us++) histogram.record(us);
  t.is(histogram.count, 10_000);
  t.is(histogram.min, 1);
  t.is(histogram.max, 10_000);
  for (const [q, exact] of [
    [0.5, 5000],
    [0.9, 9000],
    [0.99, 9900],
    [0.999, 9990],
    [1, 10_000],
  ] as const) {
    const value = histogram.percentile(q);
    t.true(value >= exact && value <= exact * (1 + 1 / 64), `p${q * 100}: ${value} for ${exact}`);
  }
  t.is(histogram.percentile(1), 10_000);
});

test('histogram summary is in ms and small samples stay exact', (t) => {
  const histogram = new Histogram();
  for (const us of [100, 100, 100, 100, 100, 100, 100, 100, 100, 120_000]) histogram.record(us);
  const summary = histogram.summaryMs();
  t.is(summary.p50, 0.1);
  t.is(summary.p90, 0.1);
  t.is(summary.max, 120);
  // With 10 samples p99 is the largest one; the bucket top is capped at the recorded max.
  t.is(summary.p99, 120);
});

test('schedule: request i is due at start + i / rate, with no drift', (t) => {
  t.is(dueAtMs(1000, 0, 500), 1000);
  t.is(dueAtMs(1000, 1, 500), 1002);
  t.is(dueAtMs(0, 999_999, 1000), 999_999);
  t.is(dueAtMs(0, 3, 3), 1000);
});

test('schedule: how many are due, at the boundaries', (t) => {
  const total = scheduledCount(1000, 3);
  t.is(total, 3000);
  t.is(dueBy(-0.001, 1000, total), 0);
  t.is(dueBy(0, 1000, total), 1);
  t.is(dueBy(0.999, 1000, total), 1);
  t.is(dueBy(1, 1000, total), 2);
  t.is(dueBy(2999, 1000, total), 3000);
  t.is(dueBy(10_000, 1000, total), 3000);
  // A rate whose interval is not a whole number of ms: request 3 is due at exactly 1000 ms.
  t.is(dueBy(1000, 3, 100), 4);
  t.is(dueBy(999.999, 3, 100), 3);
});

test('schedule: the count covers i / rate < duration', (t) => {
  t.is(scheduledCount(3, 1), 3);
  t.is(scheduledCount(1.5, 1), 2);
  t.is(scheduledCount(1228.5, 3), 3686);
  t.is(scheduledCount(100, 0), 0);
});

test('schedule: the timer waits until the next due time, at least 1 ms', (t) => {
  t.is(waitMs(0, 0, 5, 1000), 5);
  t.is(waitMs(4.2, 0, 5, 1000), 1);
  t.is(waitMs(10, 0, 5, 1000), 1);
  t.is(waitMs(0, 0, 1, 200), 5);
});

test('rate held, or why not', (t) => {
  t.deepEqual(judgeRate({ rate: 1000, sendRate: 999, sendLagP99Ms: 2 }), { held: true });
  const late = judgeRate({ rate: 1000, sendRate: 1000, sendLagP99Ms: 12.34 });
  t.false(late.held);
  t.regex(late.why ?? '', /send lag p99 was 12\.3 ms/);
  const slow = judgeRate({ rate: 1000, sendRate: 950, sendLagP99Ms: 1 });
  t.false(slow.held);
  t.regex(slow.why ?? '', /sent 950 req\/s, 95\.0% of 1000/);
});

const RESPONSE = 'HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 6\r\nDate: Thu, 01 Jan 2026 00:00:00 GMT\r\nConnection: keep-alive\r\n\r\nhello\n';

test('parser: a whole response in one chunk', (t) => {
  const parser = new ResponseParser();
  t.is(parser.push(Buffer.from(RESPONSE)), 200);
  t.false(parser.busy);
});

test('parser: a response split at every byte position', (t) => {
  const bytes = Buffer.from(RESPONSE);
  for (let at = 1; at < bytes.length; at++) {
    const parser = new ResponseParser();
    t.is(parser.push(bytes.subarray(0, at)), 0, `first part up to ${at}`);
    t.true(parser.busy);
    t.is(parser.push(bytes.subarray(at)), 200, `second part from ${at}`);
  }
});

test('parser: a head split across a reused read buffer is copied, not aliased', (t) => {
  const bytes = Buffer.from(RESPONSE);
  const shared = Buffer.alloc(bytes.length);
  const parser = new ResponseParser();
  bytes.copy(shared, 0, 0, 20);
  t.is(parser.push(shared.subarray(0, 20)), 0);
  shared.fill(0x78);
  bytes.copy(shared, 0, 20);
  t.is(parser.push(shared.subarray(0, bytes.length - 20)), 200);
});

test('parser: one response after another on a keep-alive connection, status codes kept', (t) => {
  const parser = new ResponseParser();
  t.is(parser.push(Buffer.from(RESPONSE)), 200);
  t.is(parser.push(Buffer.from('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n')), 503);
  t.is(parser.push(Buffer.from('HTTP/1.0 204 No Content\r\n\r\n')), 204);
  t.is(parser.push(Buffer.from(RESPONSE)), 200);
});

test('parser: a body that ends at close completes on end()', (t) => {
  const parser = new ResponseParser();
  t.is(parser.push(Buffer.from('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhel')), 0);
  t.is(parser.push(Buffer.from('lo\n')), 0);
  t.is(parser.end(), 200);
  t.is(new ResponseParser().end(), 0);
  const cut = new ResponseParser();
  cut.push(Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nhel'));
  t.is(cut.end(), 0, 'a content-length body cut short is not a response');
});

test('parser: whether the server keeps the connection after the response', (t) => {
  const closes = (head: string) => {
    const parser = new ResponseParser();
    t.is(parser.push(Buffer.from(`${head}\r\n\r\n`)), head.includes(' 204 ') ? 204 : 200, head);
    return parser.closes;
  };
  t.false(closes('HTTP/1.1 200 OK\r\ncontent-length: 0'));
  t.false(closes('HTTP/1.1 200 OK\r\nConnection: keep-alive\r\ncontent-length: 0'));
  t.true(closes('HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0'));
  t.true(closes('HTTP/1.1 200 OK\r\nConnection: Upgrade, Close\r\ncontent-length: 0'));
  t.true(closes('HTTP/1.0 204 No Content'), 'HTTP/1.0 closes unless it says keep-alive');
  t.false(closes('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0'));
  // The flag belongs to the last response: a keep-alive one after a closing one clears it.
  const parser = new ResponseParser();
  parser.push(Buffer.from('HTTP/1.1 200 OK\r\nConnection: close\r\ncontent-length: 0\r\n\r\n'));
  t.true(parser.closes);
  parser.push(Buffer.from('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n'));
  t.false(parser.closes);
});

const refuses = test.macro((t, input: string) => {
  t.throws(() => new ResponseParser().push(Buffer.from(input)), { instanceOf: ProtocolError });
});
test('parser refuses bytes past the response', refuses, `${RESPONSE}HTTP/1.1`);
test('parser refuses a non-HTTP status line', refuses, 'SSH-2.0-OpenSSH\r\n\r\n');
test('parser refuses chunked bodies', refuses, 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello\n\r\n0\r\n\r\n');
test('parser refuses a head that never ends', (t) => {
  const parser = new ResponseParser();
  t.throws(() => {
    for (let i = 0; i < 100; i++) parser.push(Buffer.from(`HTTP/1.1 200 OK\r\nx-filler: ${'x'.repeat(500)}`));
  }, { instanceOf: ProtocolError });
});

test('requests are formatted once, with Connection: close only without keep-alive', (t) => {
  t.is(requestBytes('/burn/20', { host: '127.0.0.1:3777', keepAlive: false }).toString(), 'GET /burn/20 HTTP/1.1\r\nHost: 127.0.0.1:3777\r\nConnection: close\r\n\r\n');
  t.is(requestBytes('/', { host: '127.0.0.1:3777', keepAlive: true }).toString(), 'GET / HTTP/1.1\r\nHost: 127.0.0.1:3777\r\n\r\n');
});

test('the child checks its settings and names the bad one', (t) => {
  const good = { host: '127.0.0.1', port: 3777, rate: 100, durationS: 1, warmupS: 0, timeoutS: 5, paths: ['/'], keepAlive: true, pool: 4, maxInFlight: 10 };
  t.deepEqual(parseConfig(JSON.stringify(good)), good);
  t.throws(() => parseConfig(JSON.stringify({ ...good, rate: 0 })), { message: /`rate`.*`0`/ });
  t.throws(() => parseConfig(JSON.stringify({ ...good, pool: 'many' })), { message: /`pool`/ });
  t.throws(() => parseConfig(JSON.stringify({ ...good, paths: [] })), { message: /`paths`/ });
  t.throws(() => parseConfig(JSON.stringify({ ...good, warmupS: -1 })), { message: /`warmupS`.*`-1`/ });
});

test('tally: a request with no response counts in the latencies at the timeout at least, as a lower bound', (t) => {
  const now = performance.now();
  // Request i was due i ms ago... or, for the unanswered ones, just now.
  const tally = new Tally((index) => now - index, 5000);
  for (let index = 0; index < 97; index++) tally.complete(index, 200);
  tally.fail('timeouts', 0);
  tally.fail('read', 1);
  tally.fail('connect', 2);
  t.is(tally.completed, 97);
  t.deepEqual(tally.failures, { connect: 1, read: 1, write: 0, timeouts: 1 });
  t.is(tally.latency.count, 100);
  t.is(tally.unanswered.count, 3);
  const summary = tally.latencySummary();
  t.true(summary.p99 >= 5000, `p99 ${summary.p99}`);
  t.true(summary.p90 < 100, `p90 ${summary.p90}`);
  t.deepEqual(summary.lowerBounds, ['p99', 'p999', 'max']);
});

test('tally: with every request answered no figure is a lower bound', (t) => {
  const tally = new Tally(() => performance.now(), 5000);
  tally.complete(0, 200);
  t.is(tally.latencySummary().lowerBounds, undefined);
  t.deepEqual(lowerBoundsOf(new Histogram(), new Histogram()), []);
});
