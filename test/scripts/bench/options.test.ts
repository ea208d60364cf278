// `npm run bench`'s flags: what the shared machine is protected from.
import test from 'ava';
import { MAX_CONNECTIONS, MAX_IN_FLIGHT, MAX_POOL, MAX_THREADS, MAX_WORKERS, parseOptions, usage } from '../../../scripts/bench/options.js';

const refuses = test.macro((t, argv: string[], message: RegExp) => {
  t.throws(() => parseOptions(argv), { message });
});

test('--workers is capped like clusterd -i', refuses, ['--workers', String(MAX_WORKERS + 1)], /`--workers` to be at most 1024, got `1025`/);
test('--counts items are capped like --workers', refuses, ['--scaling', '--counts', `1,${MAX_WORKERS + 1}`], /`--counts` to be at most 1024/);
test('--connections is capped', refuses, ['--connections', '1000000'], /`--connections` to be at most 10000, got `1000000`/);
test('--threads is capped', refuses, ['--threads', '5000'], /`--threads` to be at most 256, got `5000`/);
test('--pool and --max-in-flight stay capped', refuses, ['--pool', String(MAX_POOL + 1)], /`--pool` to be at most/);
test('--max-in-flight stays capped', refuses, ['--max-in-flight', String(MAX_IN_FLIGHT + 1)], /`--max-in-flight` to be at most/);

test('the caps themselves are accepted, and the usage names them', (t) => {
  const options = parseOptions(['--workers', String(MAX_WORKERS), '--connections', String(MAX_CONNECTIONS), '--threads', String(MAX_THREADS), '--scaling', '--counts', `1,${MAX_WORKERS}`]);
  if (options === 'help') return t.fail();
  t.is(options.workers, MAX_WORKERS);
  t.is(options.connections, MAX_CONNECTIONS);
  t.is(options.threads, MAX_THREADS);
  t.deepEqual(options.counts, [1, MAX_WORKERS]);
  for (const cap of [MAX_WORKERS, MAX_CONNECTIONS, MAX_THREADS]) t.true(usage.includes(`at most ${cap}`), `usage names ${cap}`);
});
