// scripts/bench/slices.sh refuses bad input with one line and exit 2, before it starts anything.
import test from 'ava';
import { execa } from 'execa';
import { fileURLToPath } from 'node:url';

const script = fileURLToPath(new URL('../../../scripts/bench/slices.sh', import.meta.url));

const refusals: Array<[string[], RegExp]> = [
  [['--bogus', 'node:rr', 'node:none'], /^slices\.sh: unknown flag --bogus$/],
  [['node:rr'], /^usage: scripts\/bench\/slices\.sh /],
  [['--slices', '0', 'node:rr', 'node:none'], /^slices\.sh: --slices is 1 to 200 and --seconds 1 to 60$/],
  [['--seconds', 'x', 'node:rr', 'node:none'], /^slices\.sh: --slices is 1 to 200/],
  [['node:fast', 'node:rr'], /^slices\.sh: a system is node:rr, node:none or clusterd:MODE \[FLAGS\], got 'node:fast'$/],
  [['node:rr', 'clusterd:'], /got 'clusterd:'$/],
];

for (const [args, message] of refusals) {
  test(`slices.sh ${args.join(' ')}: one line, exit 2`, async (t) => {
    const result = await execa('bash', [script, ...args], { reject: false, timeout: 10_000 });
    t.is(result.exitCode, 2);
    t.is(result.stdout, '');
    t.is(result.stderr.split('\n').length, 1, result.stderr);
    t.regex(result.stderr, message);
  });
}
