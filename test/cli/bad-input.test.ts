// Issue 2, point 10: each bad input ends the real CLI quickly with its exit code and exactly one
// `clusterd:` line on stderr naming the problem, and no stack trace from clusterd itself (the
// app's own output, prefixed `[wN]`, may carry one).
import test from 'ava';
import { execa, type Result } from 'execa';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExitCode, type ExitCodeValue } from '../../src/exit-codes.js';
import { CLI, fixture } from '../helpers/cluster.js';
import { hostsOverlap } from '../../src/cli/start.js';

/** Runs `clusterd start ...args` in text mode; a hang fails the test instead of stalling it. */
function start(args: string[], env: Record<string, string> = {}): Promise<Result> {
  return execa(process.execPath, [CLI, 'start', ...args], { reject: false, timeout: 30_000, env, stdin: 'ignore' });
}

/** The checks every case shares; returns the one clusterd line. */
function assertOneLine(t: import('ava').ExecutionContext, result: Result, exitCode: ExitCodeValue, mentions: string[]): string {
  t.false(result.timedOut, 'clusterd hung');
  t.is(result.exitCode, exitCode, String(result.stderr));
  const stderr = String(result.stderr).split('\n');
  const ours = stderr.filter((line) => line.startsWith('clusterd:'));
  t.is(ours.length, 1, String(result.stderr));
  for (const words of mentions) t.true(ours[0]?.includes(words), `${JSON.stringify(words)} not in: ${ours[0]}`);
  // Worker output arrives as `[wN] ...`: any other stack frame line would be clusterd's own.
  t.deepEqual(
    stderr.filter((line) => /^\s+at /.test(line)),
    [],
  );
  t.false(String(result.stdout).includes('    at '), 'stack trace on stdout');
  return ours[0] ?? '';
}

test('unknown flag', async (t) => {
  assertOneLine(t, await start([fixture('hello.js'), '--instancez', '2']), ExitCode.USAGE, ['instancez']);
});

test('-i 0', async (t) => {
  assertOneLine(t, await start([fixture('hello.js'), '-i', '0']), ExitCode.USAGE, ['--instances', '`0`']);
});

test('-i abc', async (t) => {
  assertOneLine(t, await start([fixture('hello.js'), '-i', 'abc']), ExitCode.USAGE, ['--instances', '`abc`']);
});

// Issue 11: values past a bound are refused up front with the flag and its range, before any
// worker is forked: Node would run a longer timer after 1 ms, and `-i 100000` would fork on.
const outOfRange = test.macro({
  async exec(t, args: string[], mentions: string[]) {
    const result = await start([fixture('hello.js'), ...args]);
    assertOneLine(t, result, ExitCode.USAGE, mentions);
    t.is(String(result.stdout), '', 'nothing started');
  },
  title: (_title, args: string[]) => `start ${args.join(' ')}: refused with the allowed range`,
});
test(outOfRange, ['--grace', '600h'], ['`--grace`', 'from 0ms to 2147483647 ms (about 24.8 days)', '`600h`']);
test(outOfRange, ['--listen-timeout', '0'], ['`--listen-timeout`', 'from 1ms to 2147483647 ms (about 24.8 days)', '`0`']);
test(outOfRange, ['--stats-interval', '600h'], ['`--stats-interval`', '0 (off) or a duration from 10ms', '`600h`']);
test(outOfRange, ['-i', '100000'], ['`--instances`', 'from 1 to 1024', '`100000`']);
test(outOfRange, ['--stats-interval', '0.0001'], ['`--stats-interval`', '`0.0001`', 'under 1 ms']);
test(outOfRange, ['--grace', '0.0001ms'], ['`--grace`', 'under 1 ms']);
test(outOfRange, ['-i', '2', '-i', '3'], ['`--instances` was given more than once', '`2`, `3`']);
test(outOfRange, ['--node-arg='], ['`--node-arg` needs a value']);
test(outOfRange, ['--node-arg=app.js'], ['`--node-arg`', '`app.js`']);
test(outOfRange, ['--no-node-arg'], ['`--node-arg`', '`false`']);
test(outOfRange, ['--wait-ready=soon'], ['`--wait-ready` is a yes/no flag', '`--wait-ready=soon`']);
// yargs kept the last: the cluster ran without it.
test(outOfRange, ['--wait-ready', '--no-wait-ready'], ['`--wait-ready` was given more than once (`--wait-ready`, `--no-wait-ready`): give it once']);
test(outOfRange, ['--grace'], ['`--grace` needs a value']);
test(outOfRange, ['--node-arg', '--max-old-space-size=512'], ['`--node-arg` needs a value (one that starts with -: --node-arg=--max-old-space-size=512)']);
// A negative value read as short flags: it said "Unknown arguments: 1, G".
test(outOfRange, ['--max-memory', '-1G'], ['`--max-memory` needs a value (one that starts with -: --max-memory=-1G)']);
test(outOfRange, ['--max-memory=-1G'], ['`--max-memory`', '`-1G`']);

test('a node flag that node refuses: one line, exit 2, no retries', async (t) => {
  for (const [flag, said] of [
    ['--node-arg=--no-such-flag', 'bad option: --no-such-flag'],
    ['--node-arg=--require', '--require requires an argument'],
  ]) {
    const result = await start([fixture('hello.js'), '-i', '2', '--name', `refused-flag-${said!.length}`, flag!]);
    assertOneLine(t, result, ExitCode.USAGE, [`node refused the workers' flags: ${said}`, '--node-arg']);
    t.false(String(result.stdout).includes('failed to boot'), String(result.stdout));
  }
});

test('an entry that is neither JavaScript nor TypeScript', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-entry-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'notes.txt'), 'hello');
  assertOneLine(t, await start([join(dir, 'notes.txt')]), ExitCode.USAGE, ['`' + join(dir, 'notes.txt') + '` is not JavaScript or TypeScript', '.js, .mjs, .cjs, .ts']);
});

test('an entry with a backslash in its path (Node cannot load it with a preload): one line, exit 2, not a boot failure per worker', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-entry-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'odd\\dir'));
  writeFileSync(join(dir, 'odd\\dir', 'app.js'), "require('node:http').createServer((q, s) => s.end('ok')).listen(0, '127.0.0.1');\n");
  assertOneLine(t, await start([join(dir, 'odd\\dir', 'app.js')]), ExitCode.USAGE, ['has a backslash in its path', 'rename it']);
});

test('a directory as the entry that names no file: one line each, exit 2', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-entry-dir-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const sub of ['empty', 'missing-main', 'broken']) mkdirSync(join(dir, sub));
  writeFileSync(join(dir, 'missing-main', 'package.json'), '{"main": "dist/server.js"}');
  writeFileSync(join(dir, 'broken', 'package.json'), '{"main": ');
  assertOneLine(t, await start([join(dir, 'empty')]), ExitCode.USAGE, ['is a directory with no package.json "main" and no index file (index.js, index.ts, ...)']);
  assertOneLine(t, await start([join(dir, 'missing-main')]), ExitCode.USAGE, ['is a directory whose package.json "main" (dist/server.js) names no file']);
  assertOneLine(t, await start([join(dir, 'broken')]), ExitCode.USAGE, ['is a directory whose package.json does not parse']);
});

test('a config whose default export never settles: one line, not a quiet exit 0', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'pending.mjs'), 'export default new Promise(() => {});\n');
  writeFileSync(join(dir, 'pending-fn.mjs'), 'export default async () => { await new Promise(() => {}); };\n');
  for (const config of ['pending.mjs', 'pending-fn.mjs']) {
    assertOneLine(t, await start([fixture('hello.js'), '--config', join(dir, config)]), ExitCode.USAGE, [`${config}: its default export never settled`]);
  }
});

test('a config module that fails while it loads: one line naming the file, exit 2, whatever it throws or leaves behind', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cases: Array<[string, string, string]> = [
    // An unhandled rejection while it loads was the CLI's "internal error", exit 1.
    // Each keeps its default export pending (and its process alive) for good: only the failure ends it.
    ['rejects-aside.mjs', "Promise.reject(new Error('vault down'));\nexport default new Promise(() => setInterval(() => {}, 60_000));\n", 'rejects-aside.mjs: vault down'],
    ['throws-later.mjs', "setImmediate(() => { throw new Error('late boom'); });\nexport default new Promise(() => setInterval(() => {}, 60_000));\n", 'throws-later.mjs: late boom'],
    // Not an Error: it said `[object Object]`.
    ['throws-object.mjs', 'export default async () => { throw { code: 42 }; };\n', 'throws-object.mjs: it threw { code: 42 }'],
    ['exits.mjs', 'process.exit(0);\n', 'exits.mjs: loading it ended its process (exit code 0) before it gave its options'],
    ['function-value.mjs', 'export default { instances: 1, grace: () => 5 };\n', 'function-value.mjs: its default export is not plain data'],
    // A Map's entries are no own keys: it read as no options ("Missing the app to run").
    ['map.mjs', "export default new Map([['instances', 2]]);\n", 'map.mjs: expected an object of options, got a Map'],
    // Thrown as the value is copied back: its own error, not "not plain data".
    ['getter.mjs', "export default { get instances() { throw new Error('no vault'); } };\n", 'getter.mjs: reading its default export threw: no vault'],
    // Structured clone keeps it, and the check for NUL characters recursed without end (exit 1, "internal error").
    ['cycle.mjs', "const env = { A: 'x' };\nenv.self = env;\nexport default { instances: 1, env };\n", 'cycle.mjs: `env` refers to itself, which no option can'],
  ];
  for (const [name, text, line] of cases) {
    writeFileSync(join(dir, name), text);
    assertOneLine(t, await start([fixture('hello.js'), '--config', join(dir, name)]), ExitCode.USAGE, [line]);
  }
});

test("the app given as its own config file: one line, not a port clash of the master's making", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const app = join(dir, 'app.cjs');
  writeFileSync(app, "require('node:http').createServer((request, response) => response.end('hi')).listen(0, '127.0.0.1');\n");
  assertOneLine(t, await start([app, '--config', app]), ExitCode.USAGE, ['app.cjs: loading it started a server: is it the app?']);
});

/** Runs `clusterd ...args`, not a start: nothing listens, nothing needs a cluster. */
function command(args: string[]): Promise<Result> {
  return execa(process.execPath, [CLI, ...args], { reject: false, timeout: 30_000, stdin: 'ignore' });
}

test('every command: a flag with no value, twice, or a word for a yes/no flag; a word that is no command', async (t) => {
  const cases: [string[], string[]][] = [
    [['logs', 'web', '-n'], ['`-n` needs a value']],
    [['logs', 'web', '--lines', '--json'], ['`--lines` needs a value']],
    [['logs', 'web', '-n', '3', '-n', '4'], ['`--lines` was given more than once', '`3`, `4`']],
    [['top', '--once', '--interval'], ['`--interval` needs a value']],
    [['ls', '--json=banana'], ['`--json` is a yes/no flag', '`--json=banana`']],
    [['bogus'], ['unknown command `bogus`', 'did you mean logs?']],
    [['xyzzy'], ['unknown command `xyzzy`']],
  ];
  for (const [args, mentions] of cases) assertOneLine(t, await command(args), ExitCode.USAGE, mentions);
  // What stays as it was: a yes/no flag as true or false, a negative number as a value (refused by its range).
  t.is((await command(['ls', '--json=true'])).exitCode, 0);
  assertOneLine(t, await command(['logs', 'web', '-n', '-1']), ExitCode.USAGE, ['`--lines`', '`-1`']);
});
test('the line names what is wrong: an unknown flag with no command, -v, NAME given twice, a value that starts with a dash, --version with more', async (t) => {
  const cases: [string[], string][] = [
    [['--bogus'], 'clusterd: unknown flag `--bogus`, and a command is required (see clusterd --help)'],
    [['-v'], 'clusterd: unknown flag `-v` (did you mean -V, --version?) (see clusterd --help)'],
    [['status', 'api', '--name', 'web'], "clusterd: the cluster's NAME was given twice, as `api` and as `--name web`: give it once (see clusterd --help)"],
    [['restart', 'api', '2', '--name', 'web'], "clusterd: the cluster's NAME was given twice, as `api` and as `--name web`: give it once (see clusterd --help)"],
    [['start', 'app.js', '--name', '-x'], 'clusterd: `--name` needs a value (one that starts with -: --name=-x) (see clusterd --help)'],
    [['start', 'app.js', '--name', '-xy'], 'clusterd: `--name` needs a value (one that starts with -: --name=-xy) (see clusterd --help)'],
    // -d is --daemon: it said "Unknown arguments: b, a".
    [['start', 'app.js', '--name', '-bad'], 'clusterd: `--name` needs a value (one that starts with -: --name=-bad) (see clusterd --help)'],
    // Unknown flags as typed, once: it said "bogus", "bogus-flag, bogusFlag", "x, q".
    [['status', '--bogus'], 'clusterd: Unknown argument: --bogus (see clusterd --help)'],
    [['status', '--bogus-flag'], 'clusterd: Unknown argument: --bogus-flag (see clusterd --help)'],
    [['status', '--no-bogus'], 'clusterd: Unknown argument: --no-bogus (see clusterd --help)'],
    [['status', '--bogus=1', '-xq'], 'clusterd: Unknown arguments: --bogus, -x, -q (see clusterd --help)'],
    // Upper case as typed: it said "-x", "-bogus", "-x, -y", "-bogus--flag, -bogus-flag".
    [['status', '-X'], 'clusterd: Unknown argument: -X (see clusterd --help)'],
    [['status', '--Bogus'], 'clusterd: Unknown argument: --Bogus (see clusterd --help)'],
    [['status', '-xY'], 'clusterd: Unknown arguments: -x, -Y (see clusterd --help)'],
    [['status', '--bogusFlag'], 'clusterd: Unknown argument: --bogusFlag (see clusterd --help)'],
    [['status', '--Bogus-Flag=1'], 'clusterd: Unknown argument: --Bogus-Flag (see clusterd --help)'],
    [['status', '--control', '-x'], 'clusterd: `--control` needs a value (one that starts with -: --control=-x) (see clusterd --help)'],
    [['--version', 'extra'], 'clusterd: `--version` takes nothing else: clusterd --version (see clusterd --help)'],
    [['help', 'xyzzy'], 'clusterd: unknown command `xyzzy` (see clusterd --help)'],
  ];
  for (const [args, line] of cases) t.is(assertOneLine(t, await command(args), ExitCode.USAGE, []), line, args.join(' '));
  // A yes/no flag before a dash word: that word is the unknown flag, as before.
  t.is(assertOneLine(t, await command(['start', 'app.js', '--wait-ready', '-x']), ExitCode.USAGE, []), 'clusterd: Unknown argument: -x (see clusterd --help)');
  // `--name` with restart's WORKER_ID before it is no second NAME.
  t.regex(String((await command(['restart', '2', '--name', 'none-by-this-name'])).stderr), /^clusterd: no cluster named none-by-this-name is running/);
  const help = await command(['help', 'status']);
  t.is(help.exitCode, 0, String(help.stderr));
  t.regex(String(help.stdout), /^clusterd status \[name\]/);
});

test(outOfRange, ['--max-memory', '1k'], ['`--max-memory`', 'from 16M to 1T', '`1k`']);
test(outOfRange, ['--max-memory', '512M', '--stats-interval', '0'], ['`--max-memory`', 'judged from the workers\' stats', '`--stats-interval` 0 turns off']);
test(outOfRange, ['--kill-signal', 'SIGTERMINATE'], ['`--kill-signal`', 'a signal name such as SIGTERM', '`SIGTERMINATE`']);
test(outOfRange, ['--kill-signal', 'SIGKILL'], ['`--kill-signal`', 'cannot be handled', '`SIGKILL`']);
test(outOfRange, ['--cwd', '/nonexistent/release'], ['`--cwd`', 'a directory', '`/nonexistent/release`', 'ENOENT']);
test(outOfRange, ['--cwd', '/etc/hostname'], ['`--cwd`', 'a directory', 'not a directory']);

test('--log-file blank or naming a directory (logs/): one line, exit 2, and no plain file made of it where start ran', async (t) => {
  // Both were opened as given: the lines went to a new plain file named ` ` or `logs`.
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-log-file-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const [value, mentions] of [
    ['logs/', ['`--log-file`', "a file's path, not a directory's", '`logs/`']],
    [' ', ['`--log-file`', "a file's path", '` `']],
  ] as const) {
    const result = await execa(process.execPath, [CLI, 'start', fixture('hello.js'), '-i', '1', '--log-file', value], { cwd: dir, reject: false, timeout: 30_000, stdin: 'ignore' });
    assertOneLine(t, result, ExitCode.USAGE, [...mentions]);
  }
  t.deepEqual(readdirSync(dir), [], 'nothing written');
  writeFileSync(join(dir, 'clusterd.config.json'), JSON.stringify({ entry: fixture('hello.js'), logFile: 'logs/' }));
  const filed = await execa(process.execPath, [CLI, 'start'], { cwd: dir, reject: false, timeout: 30_000, stdin: 'ignore' });
  t.is(
    assertOneLine(t, filed, ExitCode.USAGE, []),
    `clusterd: ${join(dir, 'clusterd.config.json')}: Expected \`logFile\` to be a file's path, not a directory's, got \`${join(dir, 'logs')}/\``,
  );
});

// Control commands check their values before looking for a cluster.
const controlOutOfRange = test.macro({
  async exec(t, args: string[], mentions: string[]) {
    const result = await execa(process.execPath, [CLI, ...args], { reject: false, timeout: 30_000, stdin: 'ignore', env: { CLUSTERD_RUNTIME_DIR: '/nonexistent/clusterd' } });
    assertOneLine(t, result, ExitCode.USAGE, mentions);
  },
  title: (_title, args: string[]) => `${args.join(' ')}: refused with the allowed range`,
});
test(controlOutOfRange, ['logs', '--lines', '5000'], ['`--lines`', 'from 0 to 1000', '`5000`']);
test(controlOutOfRange, ['scale', '+5000'], ['with K at most 1024', '`+5000`']);
test(controlOutOfRange, ['scale', '0'], ['cannot scale to 0 workers']);
test(controlOutOfRange, ['scale', '2000'], ['N from 1 to 1024', '`2000`']);
test(controlOutOfRange, ['restart', '0'], ['WORKER_ID', 'from 1 to 1024', '`0`']);
test(controlOutOfRange, ['top', '--interval', '0'], ['`--interval`', 'from 50ms to 1m', '`0`']);

test('entry file missing', async (t) => {
  const result = await start([fixture('no-such-app.js'), '-i', '1']);
  assertOneLine(t, result, ExitCode.USAGE, ['not found', 'no-such-app.js']);
  // Caught before any worker starts.
  t.is(String(result.stdout), '');
});

test('entry with a syntax error', async (t) => {
  assertOneLine(t, await start([fixture('broken-syntax.js'), '-i', '1']), ExitCode.BOOT_FAILED, ['failed to boot', 'SyntaxError']);
});

test('app that throws at start-up', async (t) => {
  const result = await start([fixture('throws-at-start.js'), '-i', '2']);
  assertOneLine(t, result, ExitCode.BOOT_FAILED, ['failed to boot 3 times', 'Error: cannot reach the database at db.invalid:5432']);
  // The app's own error output is shown too, prefixed with its worker.
  t.regex(String(result.stderr), /^\[w\d\] Error: cannot reach the database/m);
});

test('a unix socket path another process listens on, or a file that is not a socket: one line, left alone', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-unix-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const socketPath = join(dir, 'taken.sock');
  const holder = net.createServer();
  t.teardown(() => holder.close());
  await new Promise<void>((resolve) => holder.listen(socketPath, resolve));
  const result = await start([fixture('unix-shared.js'), '-i', '2', '--listen-timeout', '10m', '--', socketPath]);
  assertOneLine(t, result, ExitCode.LISTEN_FAILED, [`cannot listen on unix socket ${socketPath}`, 'in use']);
  t.false(String(result.stdout).includes('failed to boot'), String(result.stdout));
  t.true(existsSync(socketPath), 'the other process\'s socket is left alone');
  // Not a socket at all: the same, and the file is untouched.
  const file = join(dir, 'notes.txt');
  writeFileSync(file, 'keep me');
  const onFile = await start([fixture('unix-shared.js'), '-i', '2', '--listen-timeout', '10m', '--', file]);
  assertOneLine(t, onFile, ExitCode.LISTEN_FAILED, [`cannot listen on unix socket ${file}`, 'in use']);
  t.is(readFileSync(file, 'utf8'), 'keep me');
  // Under a directory that does not exist (Node says EACCES): the directory is named.
  const nowhere = await start([fixture('unix-shared.js'), '-i', '2', '--', join(dir, 'missing', 'app.sock')]);
  assertOneLine(t, nowhere, ExitCode.LISTEN_FAILED, [`cannot listen on unix socket ${join(dir, 'missing', 'app.sock')}: no such directory ${join(dir, 'missing')}`]);
  // Longer than a unix socket's path may be: the app's listen fails at once with the reason (a long
  // --listen-timeout shows it did not wait for it).
  const long = await start([fixture('unix-shared.js'), '-i', '2', '--listen-timeout', '10m', '--max-boot-failures', '1', '--', join(dir, `${'x'.repeat(110)}.sock`)]);
  assertOneLine(t, long, ExitCode.BOOT_FAILED, ['failed to boot', 'ENAMETOOLONG']);
});

test("a port the cluster's own --health listens on: the one line says so (once the cluster has exited, nothing holds it)", async (t) => {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise((resolve) => probe.close(resolve));

  const result = await start([fixture('hello.js'), '-i', '1', '--name', 'own-health-port', '--health', `127.0.0.1:${port}`, '--listen-timeout', '10m'], { PORT: String(port) });
  assertOneLine(t, result, ExitCode.LISTEN_FAILED, [`cannot listen on port ${port} (127.0.0.1:${port}): address already in use (EADDRINUSE): it is this cluster's own --health address`]);
});

test('hostsOverlap: one host, a wildcard of its family, or :: (dual-stack) clash; 0.0.0.0 beside an IPv6 host does not', (t) => {
  for (const [a, b] of [['127.0.0.1', '127.0.0.1'], ['0.0.0.0', '127.0.0.1'], ['::', '127.0.0.1'], ['::', '::1'], ['::1', '::1']]) t.true(hostsOverlap(a!, b!) && hostsOverlap(b!, a!), `${a} ${b}`);
  for (const [a, b] of [['0.0.0.0', '::1'], ['127.0.0.1', '::1'], ['127.0.0.1', '127.0.0.2']]) t.false(hostsOverlap(a!, b!) || hostsOverlap(b!, a!), `${a} ${b}`);
});

test('two of the master\'s own listeners on one port: one line naming both, exit 2, before anything starts', async (t) => {
  // It failed at start as "cannot serve health on 127.0.0.1:9100: address already in use", without
  // a word that --metrics held it.
  const result = await start([fixture('hello.js'), '-i', '1', '--name', 'own-ports', '--metrics', '127.0.0.1:39100', '--health', '0.0.0.0:39100']);
  assertOneLine(t, result, ExitCode.USAGE, ["`--health` 0.0.0.0:39100 is on `--metrics`'s port (127.0.0.1:39100): give each its own port"]);
  const dual = await start([fixture('hello.js'), '-i', '1', '--name', 'own-ports-6', '--metrics', '[::1]:39100', '--health', '[::]:39100']);
  assertOneLine(t, dual, ExitCode.USAGE, ["`--health` [::]:39100 is on `--metrics`'s port ([::1]:39100): give each its own port"]);
});

test('app that never listens, with --listen-timeout 1s', async (t) => {
  const result = await start([fixture('never-listens.js'), '-i', '1', '--listen-timeout', '1s', '--max-boot-failures', '2']);
  assertOneLine(t, result, ExitCode.BOOT_FAILED, ['failed to boot 2 times', '--listen-timeout']);
});

test('a port in use: the app\'s server gets the error a process of its own would (listen EADDRINUSE ... :::PORT), not Node\'s cluster wording (bind ... null:PORT)', async (t) => {
  const holder = net.createServer();
  t.teardown(() => holder.close());
  await new Promise<void>((resolve) => holder.listen(0, resolve));
  const { port } = holder.address() as net.AddressInfo;
  const result = await start([fixture('reports-listen-error.js'), '-i', '1', '--listen-timeout', '10m'], { PORT: String(port) });
  t.is(result.exitCode, ExitCode.LISTEN_FAILED, String(result.stderr));
  const reported = String(result.stdout)
    .split('\n')
    .flatMap((line) => (/^\[w1\] \{/.test(line) ? [JSON.parse(line.slice('[w1] '.length)) as unknown] : []));
  t.deepEqual(reported, [{ message: `listen EADDRINUSE: address already in use :::${port}`, code: 'EADDRINUSE', syscall: 'listen', address: '::', port }]);
});

test('port already in use by another process: reported once, not retried', async (t) => {
  const holder = net.createServer();
  t.teardown(() => holder.close());
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  const { port } = holder.address() as net.AddressInfo;

  // A long --listen-timeout: only a failure reported at once ends this before execa's timeout.
  const result = await start([fixture('hello.js'), '-i', '2', '--listen-timeout', '10m'], { PORT: String(port) });
  const line = assertOneLine(t, result, ExitCode.LISTEN_FAILED, [`port ${port}`, 'in use']);
  t.is(String(result.stderr).split(line).length, 2, 'the error line appears once');
  // Not retried: no boot-failure notes, and at most one bind error per initial worker.
  t.false(String(result.stdout).includes('failed to boot'), String(result.stdout));
  const bindErrors = String(result.stderr)
    .split('\n')
    .filter((text) => /^\[w\d\] Error: .*EADDRINUSE/.test(text));
  t.true(bindErrors.length >= 1 && bindErrors.length <= 2, bindErrors.join('\n'));
});
