// scripts/bench/master-idle.sh refuses bad input with one line and exit 2 before it starts anything;
// a clusterd that exits before it is ready stops it at once with clusterd's own line, exit 1.
import test from 'ava';
import { execa } from 'execa';
import { fileURLToPath } from 'node:url';
import { refusesWithOneLine } from '../../helpers/scripts.js';

const script = fileURLToPath(new URL('../../../scripts/bench/master-idle.sh', import.meta.url));

const refusals: Array<[string[], RegExp]> = [
  [['--bogus', '2'], /^master-idle\.sh: unknown flag --bogus$/],
  [[], /^usage: scripts\/bench\/master-idle\.sh /],
  [['0'], /^master-idle\.sh: N is 1 to 64 workers and --seconds 1 to 600$/],
  [['65'], /^master-idle\.sh: N is 1 to 64 workers/],
  [['two'], /^master-idle\.sh: N is 1 to 64 workers/],
  [['--seconds', '0', '2'], /^master-idle\.sh: N is 1 to 64 workers and --seconds 1 to 600$/],
  [['--seconds'], /^master-idle\.sh: --seconds needs a value$/],
];

refusesWithOneLine(script, 'master-idle.sh', refusals);

test('master-idle.sh with a mode clusterd does not know: clusterd\'s own line at once, exit 1', async (t) => {
  const result = await execa('bash', [script, '--seconds', '1', '2', '--balance', 'bogus'], { reject: false, timeout: 20_000 });
  t.is(result.exitCode, 1, result.stderr);
  t.is(result.stderr.split('\n').length, 1, result.stderr);
  t.regex(result.stderr, /^master-idle\.sh: clusterd exited before it was ready: .*bogus/);
});
