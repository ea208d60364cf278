// A probe sent while the loop is inside a native call runs when V8 next takes an interrupt: after a
// JSON.parse, at the entry of the function called next. The block is not that function's.
import test from 'ava';
import { fixture, get, startCluster, waitFor } from '../helpers/cluster.js';
import { control } from '../helpers/control.js';

interface Site {
  function: string;
  url: string;
  line: number;
  count: number;
}

test('a JSON.parse followed by more work is not filed under the function called after it, but where its caller made that call', async (t) => {
  // esm.mjs's /json (parseBig, then serializeBig): 22 of 22 sites were serializeBig at its opening line,
  // the probe having run at its entry once JSON.parse returned; parseBig never appeared.
  const ctl = control(t);
  const cluster = await startCluster(fixture('parses-then-works.js'), { instances: 1, flags: ['--name', 'parsethen', '--watchdog', '30s'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  const sites = await waitFor(
    async () => {
      await get(cluster.port, '/json', { timeoutMs: 20_000 });
      const status = JSON.parse(String((await ctl.run(['status', 'parsethen', '--json'])).stdout)) as { workers: Array<{ blockedSites: Site[] }> };
      const found = status.workers[0]!.blockedSites;
      return found.reduce((sum, site) => sum + site.count, 0) >= 2 ? found : null;
    },
    { what: 'two blocks filed', timeoutMs: 60_000 },
  );
  // The request handler, at its call to spinAfter (the line after parseBig's); never spinAfter at its
  // entry (line 14), which had run nothing. A probe that a loaded machine sent only once the parse was over
  // catches spinAfter's own loop (line 16), and that is right.
  const at = (site: Site) => `${site.function || '(anonymous)'}:${site.line}`;
  t.true(sites.every((site) => site.url.endsWith('/test/fixtures/parses-then-works.js')), JSON.stringify(sites));
  t.deepEqual(
    sites.map(at).filter((where) => where !== '(anonymous):33' && where !== 'spinAfter:16'),
    [],
    JSON.stringify(sites),
  );
  t.true(sites.some((site) => site.line === 33), JSON.stringify(sites));
});

test("a loop on a one-line handler's first line is filed under that handler, not its caller", async (t) => {
  // The probe runs at the loop's back edge 16 columns into the line, which read as the handler's entry
  // (the block then went to Node's emit, the handler's caller) when any column up to
  // `async function* ` past the function's start did.
  const ctl = control(t);
  const cluster = await startCluster(fixture('spins-on-one-line.js'), { instances: 1, flags: ['--name', 'oneline', '--watchdog', '30s'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  const sites = await waitFor(
    async () => {
      await get(cluster.port, '/spin', { timeoutMs: 20_000 });
      const status = JSON.parse(String((await ctl.run(['status', 'oneline', '--json'])).stdout)) as { workers: Array<{ blockedSites: Site[]; blocks: number }> };
      const [worker] = status.workers;
      return worker!.blocks >= 2 ? worker!.blockedSites : null;
    },
    { what: 'two blocks caught', timeoutMs: 60_000 },
  );
  const at = (site: Site) => `${site.url.slice(site.url.lastIndexOf('/') + 1)}:${site.line}`;
  t.deepEqual([...new Set(sites.map(at))], ['spins-on-one-line.js:7'], JSON.stringify(sites));
});

test("a loop whose column on its function's line is where an async function's entry would be is that function's, not its caller's (a minified bundle)", async (t) => {
  // `function spin(n) { for (...` takes the interrupt at the loop, 19 columns in: `async function spin`,
  // which the column rule read as spin's entry (the block then went to the request handler, at its call).
  const ctl = control(t);
  const cluster = await startCluster(fixture('spins-in-minified-bundle.js'), { instances: 1, flags: ['--name', 'minified', '--watchdog', '30s'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  const sites = await waitFor(
    async () => {
      await get(cluster.port, '/spin', { timeoutMs: 20_000 });
      const status = JSON.parse(String((await ctl.run(['status', 'minified', '--json'])).stdout)) as { workers: Array<{ blockedSites: Site[]; blocks: number }> };
      const [worker] = status.workers;
      return worker!.blocks >= 2 ? worker!.blockedSites : null;
    },
    { what: 'two blocks caught', timeoutMs: 60_000 },
  );
  t.deepEqual([...new Set(sites.map((site) => site.function))], ['spin'], JSON.stringify(sites));
});

test('a new worker\'s first block, inside a native call, is counted though its stack came after it (the inspector opens once the call returns)', async (t) => {
  // Every new process's first such block went uncounted: the probe ran after the loop beat again, and
  // a capture from after the silence was dropped as saying nothing about it.
  const ctl = control(t);
  const cluster = await startCluster(fixture('parses-only.js'), { instances: 1, flags: ['--name', 'firstnative', '--watchdog', '0'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  await get(cluster.port, '/json', { timeoutMs: 20_000 });
  const blocks = await waitFor(
    async () => {
      const status = JSON.parse(String((await ctl.run(['status', 'firstnative', '--json'])).stdout)) as { workers: Array<{ blocks: number }> };
      return status.workers[0]!.blocks > 0 ? status.workers[0]!.blocks : null;
    },
    { what: 'the first block counted', timeoutMs: 10_000 },
  );
  t.is(blocks, 1);
});
