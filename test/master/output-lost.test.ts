// Issue 11: the master's stdout or stderr going away (`clusterd start app.js | head -1`: EPIPE at
// the next write) never stops the cluster. The output is dropped, the cluster serves on, the
// master keeps every line for `clusterd logs`, and stops with its normal exit code.
import test from 'ava';
import { execa } from 'execa';
import { createInterface } from 'node:readline';
import { CLI, fixture, get, killOnTeardown, waitFor } from '../helpers/cluster.js';
import { control } from '../helpers/control.js';

const REQUESTS = 20;

const outputLost = test.macro({
  async exec(t, format: 'text' | 'json', closed: ('stdout' | 'stderr')[]) {
    const ctl = control(t);
    const master = execa(process.execPath, [CLI, 'start', fixture('logs-per-request.js'), '-i', '1', '--name', 'piped', '--log-format', format], {
      env: ctl.env,
      reject: false,
      buffer: false,
      stdin: 'ignore',
    });
    killOnTeardown(t, master);
    const stderr: string[] = [];
    if (!closed.includes('stderr')) createInterface({ input: master.stderr! }).on('line', (line) => stderr.push(line));

    // The first line is the ready line (the app writes nothing before a request): then the reader goes.
    const first = await new Promise<string>((resolve) => createInterface({ input: master.stdout! }).once('line', resolve));
    const port = Number(/127\.0\.0\.1:(\d+)/.exec(first)?.[1]);
    t.true(port > 0, first);
    for (const name of closed) master[name]!.destroy();

    // Every request makes the worker write a line to each stream, which the master passes on.
    for (let i = 0; i < REQUESTS; i++) t.is((await get(port, `/${i}`)).status, 200);
    const [worker] = await ctl.workers('piped');
    t.is(worker!.restarts, 0);
    // Every line is still kept for `clusterd logs`, the last one included.
    await waitFor(async () => {
      const logs = await ctl.run(['logs', 'piped', '--lines', '1000', '--json']);
      const kept = String(logs.stdout)
        .split('\n')
        .filter(Boolean)
        .map((line) => (JSON.parse(line) as { message: string }).message);
      return kept.filter((message) => /^(out|err) \/\d+$/.test(message)).length === 2 * REQUESTS;
    }, { what: `all ${2 * REQUESTS} request lines in clusterd logs` });
    t.is((await get(port, '/after')).status, 200);

    master.kill('SIGTERM');
    t.is((await master).exitCode, 0);
    if (format === 'text' && !closed.includes('stderr')) {
      // Said once, on the stream that still works; the app's stderr lines still reach it.
      t.deepEqual(stderr.filter((line) => line.startsWith('clusterd:')), [
        'clusterd: stdout failed (EPIPE): its output is dropped from now on; the cluster keeps running',
      ]);
      t.true(stderr.includes(`[w1] err /${REQUESTS - 1}`));
    }
  },
  title: (_title, format: string, closed: string[]) => `--log-format ${format}: the reader of ${closed.join(' and ')} goes away; the cluster serves on and stops with exit 0`,
});

test(outputLost, 'text', ['stdout']);
test(outputLost, 'json', ['stdout', 'stderr']);
