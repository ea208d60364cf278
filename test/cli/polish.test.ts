// Issue 13, the CLI's rough edges: its own version from anywhere, one line for a usage error (naming
// the flag and what it allows), help that wraps between words, and a reader that stops reading
// ending a command quietly.
import test from 'ava';
import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { ExitCode } from '../../src/exit-codes.js';
import { CLI, fixture, startCluster } from '../helpers/cluster.js';
import { control } from '../helpers/control.js';

const run = (args: string[], options: { cwd?: string; env?: Record<string, string> } = {}) =>
  execa(process.execPath, [CLI, ...args], { reject: false, timeout: 30_000, stdin: 'ignore', ...options });

test('--version prints clusterd\'s own version, from any directory', async (t) => {
  const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  for (const cwd of [process.cwd(), tmpdir()]) {
    const result = await run(['--version'], { cwd });
    t.is(result.exitCode, 0);
    t.is(String(result.stdout).trim(), version, cwd);
  }
});

test('no command: one line, said once', async (t) => {
  const result = await run([]);
  t.is(result.exitCode, ExitCode.USAGE);
  t.is(String(result.stderr), 'clusterd: a command is required (see clusterd --help)');
});

test('a value outside the choices: one line naming the flag, the value and the choices', async (t) => {
  const result = await run(['start', 'app.js', '--balance', 'foo']);
  t.is(result.exitCode, ExitCode.USAGE);
  const stderr = String(result.stderr);
  t.is(stderr.split('\n').length, 1, stderr);
  t.regex(stderr, /^clusterd: Invalid values: Argument: balance, Given: "foo", Choices: "fair", "rr", "least", "sticky", "shared", "reuseport" \(see clusterd --help\)$/);
});

test('help wraps between words, at 100 columns when not a terminal', async (t) => {
  const result = await run(['start', '--help']);
  t.is(result.exitCode, 0);
  const help = String(result.stdout);
  const lines = help.split('\n');
  t.true(lines.every((line) => line.length <= 100), lines.filter((line) => line.length > 100).join('\n'));
  // Every word of a long description is whole: joined back, the text reads as written.
  const flat = help.replace(/\s+/g, ' ');
  t.true(flat.includes('rr: the master hands each connection to the next free worker'), help);
  t.true(flat.includes('shared: workers accept from one shared socket'), help);
});

test('a reader that stops reading ends a command quietly, exit 0', async (t) => {
  const ctl = control(t);
  // `ls` with no cluster prints its header only; a closed pipe is what matters: stdout closed at once.
  const child = execa(process.execPath, [CLI, 'ls'], { reject: false, timeout: 30_000, env: ctl.env, stdin: 'ignore', stdout: 'pipe' });
  child.stdout!.destroy();
  const result = await child;
  t.is(result.exitCode, 0, String(result.stderr));
  t.notRegex(String(result.stderr), /EPIPE|internal error/);
});

test('stop --all stops every local cluster at once; with a NAME it is a usage error', async (t) => {
  const ctl = control(t);
  const clusters = await Promise.all(['alla', 'allb'].map((name) => startCluster(fixture('hello.js'), { instances: 1, flags: ['--name', name], env: ctl.env })));
  for (const cluster of clusters) t.teardown(() => cluster.stop('SIGKILL'));
  const misuse = await ctl.run(['stop', '--all', 'alla']);
  t.is(misuse.exitCode, ExitCode.USAGE);
  t.regex(String(misuse.stderr), /^clusterd: Expected --all alone/);
  const result = await ctl.run(['stop', '--all']);
  t.is(result.exitCode, 0, String(result.stderr));
  t.deepEqual(String(result.stdout).split('\n').map((line) => line.replace(/\d+/g, 'N')).sort(), ['stopped cluster alla (master pid N)', 'stopped cluster allb (master pid N)']);
  t.deepEqual(await Promise.all(clusters.map((cluster) => cluster.exited)), [0, 0]);
  const none = await ctl.run(['stop', '--all']);
  t.is(none.exitCode, 0);
  t.is(String(none.stdout), 'no running clusters');
});
