// A script's refusals of bad input: each one line on stderr, nothing on stdout, exit 2.
import test from 'ava';
import { execa } from 'execa';

/** One test per case: `script` run with `args` refuses with one line that matches. */
export function refusesWithOneLine(script: string, name: string, cases: ReadonlyArray<[string[], RegExp]>): void {
  for (const [args, message] of cases) {
    test(`${name} ${args.join(' ')}: one line, exit 2`, async (t) => {
      const result = await execa('bash', [script, ...args], { reject: false, timeout: 10_000 });
      t.is(result.exitCode, 2);
      t.is(result.stdout, '');
      t.is(result.stderr.split('\n').length, 1, result.stderr);
      t.regex(result.stderr, message);
    });
  }
}
