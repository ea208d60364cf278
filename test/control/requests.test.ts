// Issue 11: every control-plane request is parsed before a handler acts on it: one case per
// out-of-range value, and the defaults a missing field means.
import test from 'ava';
import { ClusterdError } from '../../src/errors.js';
import { ExitCode } from '../../src/exit-codes.js';
import {
  MAX_LOG_LINES,
  MAX_WORKER_ID,
  parseLogsRequest,
  parseReloadRequest,
  parseScaleRequest,
  parseStatusRequest,
  parseWatchRequest,
  parseWorkerRequest,
} from '../../src/control/requests.js';

test('defaults: an empty request means what the proto says', (t) => {
  t.deepEqual(parseStatusRequest(undefined), { history: false });
  t.deepEqual(parseWatchRequest({}), { history: false, intervalMs: 250 });
  t.deepEqual(parseReloadRequest({}), { parallel: 1 });
  t.deepEqual(parseLogsRequest(null), { follow: false, worker: undefined, lines: 0 });
});

test('well-formed values pass through', (t) => {
  t.deepEqual(parseWatchRequest({ includeHistory: true, minIntervalMs: 1000 }), { history: true, intervalMs: 1000 });
  t.deepEqual(parseReloadRequest({ parallel: 3 }), { parallel: 3 });
  t.deepEqual(parseWorkerRequest({ id: 2 }), { id: 2 });
  t.deepEqual(parseScaleRequest({ spec: '+1' }), { spec: '+1' });
  t.deepEqual(parseLogsRequest({ follow: true, worker: 2, lines: 50 }), { follow: true, worker: 2, lines: 50 });
});

test('the watch interval is clamped to what the master serves', (t) => {
  t.is(parseWatchRequest({ minIntervalMs: 1 }).intervalMs, 50);
  t.is(parseWatchRequest({ minIntervalMs: 4_000_000_000 }).intervalMs, 60_000);
});

const refused = test.macro({
  exec(t, parse: () => unknown, why: RegExp) {
    const error = t.throws(parse, { instanceOf: ClusterdError });
    t.is(error?.exitCode, ExitCode.USAGE);
    t.regex(error?.message ?? '', why);
  },
  title: (title = '') => `refused with a usage error: ${title}`,
});

test('worker id 0', refused, () => parseWorkerRequest({ id: 0 }), /worker id/);
test('worker id past the cap', refused, () => parseWorkerRequest({ id: MAX_WORKER_ID + 1 }), /from 1 to 1024/);
test('reload --parallel of four billion', refused, () => parseReloadRequest({ parallel: 4_000_000_000 }), /--parallel/);
test('an empty scale', refused, () => parseScaleRequest({ spec: '' }), /worker count/);
test('a scale spec of 10,000 characters', refused, () => parseScaleRequest({ spec: '9'.repeat(10_000) }), /worker count/);
test('logs for worker 5000', refused, () => parseLogsRequest({ worker: 5000 }), /worker id/);
test('logs --lines past what is kept', refused, () => parseLogsRequest({ lines: MAX_LOG_LINES + 1 }), /--lines/);
