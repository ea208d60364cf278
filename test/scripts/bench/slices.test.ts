// scripts/bench/slices.sh refuses bad input with one line and exit 2, before it starts anything;
// a system that exits before it answers stops it at once, with one line that says why.
import test from 'ava';
import { execa } from 'execa';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { refusesWithOneLine } from '../../helpers/scripts.js';

const script = fileURLToPath(new URL('../../../scripts/bench/slices.sh', import.meta.url));

const refusals: Array<[string[], RegExp]> = [
  [['--bogus', 'node:rr', 'node:none'], /^slices\.sh: unknown flag --bogus$/],
  [['node:rr'], /^usage: scripts\/bench\/slices\.sh /],
  [['--slices', '0', 'node:rr', 'node:none'], /^slices\.sh: --slices is 1 to 200 and --seconds 1 to 60$/],
  [['--seconds', 'x', 'node:rr', 'node:none'], /^slices\.sh: --slices is 1 to 200/],
  [['node:fast', 'node:rr'], /^slices\.sh: a system is node:rr, node:none or clusterd:MODE \[FLAGS\], got 'node:fast'$/],
  [['node:rr', 'clusterd:'], /got 'clusterd:'$/],
  [['--slices'], /^slices\.sh: --slices needs a value$/],
];

refusesWithOneLine(script, 'slices.sh', refusals);

test('slices.sh with a mode clusterd does not know: clusterd\'s own line at once, exit 1', async (t) => {
  // wrk is not needed to get that far (the test set-up does not install it): a stand-in on PATH.
  const bin = mkdtempSync(path.join(tmpdir(), 'slices-'));
  t.teardown(() => rmSync(bin, { recursive: true, force: true }));
  writeFileSync(path.join(bin, 'wrk'), '#!/bin/sh\nexit 1\n');
  chmodSync(path.join(bin, 'wrk'), 0o755);
  // It waited out 20 s for the port before, then said only that nothing answered: the timeout fails that.
  const result = await execa('bash', [script, 'clusterd:bogus', 'node:rr'], { reject: false, timeout: 15_000, env: { PATH: `${bin}:${process.env.PATH}` } });
  t.is(result.exitCode, 1, result.stderr);
  t.is(result.stderr.split('\n').length, 1, result.stderr);
  t.regex(result.stderr, /^slices\.sh: the system for port 18101 exited before it answered: .*bogus/);
});
