// clusterd.config.{json,mjs,js,ts} and --config: every key checked, errors naming the key and the
// file, flags over the file over the defaults, and the published JSON Schema agreeing with the
// parser on what is valid (both are made from src/cli/start-options.ts).
import test, { type ExecutionContext } from 'ava';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { execa } from 'execa';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, loadError, parseConfig, withAbsolutePaths } from '../../src/cli/config-file.js';
import { masterOptions, startSettings } from '../../src/cli/start.js';
import { configKey, configSchema, START_OPTIONS } from '../../src/cli/start-options.js';
import { UsageError } from '../../src/errors.js';
import { ExitCode } from '../../src/exit-codes.js';
import { CLI, fixture, get, isAlive, launch } from '../helpers/cluster.js';

function scratch(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const usage = (t: ExecutionContext, run: () => unknown, pattern: RegExp): void => {
  const error = t.throws(run, { instanceOf: UsageError });
  t.regex(error!.message, pattern);
  t.false(error!.message.includes('\n'), 'one line');
};

test('every key and the shape of every value is checked, naming the key and the file', (t) => {
  const file = '/srv/app/clusterd.config.json';
  usage(t, () => parseConfig({ gracee: 3 }, file), /^\/srv\/app\/clusterd\.config\.json: unknown key `gracee` \(did you mean `grace`\?\); the keys are entry, env, args, instances/);
  usage(t, () => parseConfig({ 'wait-ready': true }, file), /unknown key `wait-ready` \(did you mean `waitReady`\?\)/);
  usage(t, () => parseConfig({ grace: true }, file), /: expected `grace` to be a string or a number, got boolean `true`$/);
  usage(t, () => parseConfig({ waitReady: 'yes' }, file), /: expected `waitReady` to be true or false, got `yes`$/);
  // A number only where the schema takes one: a name or a token written as a number is a mistake.
  usage(t, () => parseConfig({ name: 123 }, file), /: expected `name` to be a string, got number `123`$/);
  usage(t, () => parseConfig({ controlToken: 123456 }, file), /: expected `controlToken` to be a string, got number `123456`$/);
  usage(t, () => parseConfig({ health: 9000 }, file), /: expected `health` to be a string, got number `9000`$/);
  usage(t, () => parseConfig({ balance: 3 }, file), /: expected `balance` to be one of fair, rr, least, sticky, shared, reuseport, got number `3`$/);
  usage(t, () => parseConfig({ balance: null }, file), /: expected `balance` to be one of fair, rr, least, sticky, shared, reuseport, got null$/);
  usage(t, () => parseConfig({ nodeArg: '--inspect' }, file), /: expected `nodeArg` to be an array of strings, got `--inspect`$/);
  usage(t, () => parseConfig({ args: [1] }, file), /: expected `args` to be an array of strings, got an array$/);
  usage(t, () => parseConfig({ env: { 'BAD-NAME': 'x' } }, file), /: expected `env` to be an object of environment variables.*, got the name `BAD-NAME`$/);
  usage(t, () => parseConfig({ env: { A: 'x', B: { nested: 1 } } }, file), /: expected `env` to be an object of environment variables.*, got an object for B$/);
  usage(t, () => parseConfig({ env: { A: Infinity } }, file), /, got number `Infinity` for A$/);
  // A NUL fits JSON but no process: every fork failed, late and unclearly (exit 3).
  usage(t, () => parseConfig({ env: { A: 'x\u0000y' } }, file), /^\/srv\/app\/clusterd\.config\.json: `env` holds a NUL character/);
  usage(t, () => parseConfig({ args: ['--x', 'a\u0000'] }, file), /: `args` holds a NUL character/);
  usage(t, () => parseConfig({ nodeArg: ['--title=a\u0000b'] }, file), /: `nodeArg` holds a NUL character/);
  usage(t, () => parseConfig({ logFile: 'out\u0000.log' }, file), /: `logFile` holds a NUL character/);
  usage(t, () => parseConfig({ entry: '' }, file), /: expected `entry` to be the path of the app, got ``$/);
  usage(t, () => parseConfig([], file), /: expected an object of options, got an array$/);
  usage(t, () => parseConfig(null, file), /: expected an object of options, got null$/);

  const config = parseConfig({ $schema: './schema.json', entry: 'src/app.js', instances: 4, grace: 30, waitReady: true, nodeArg: ['--max-old-space-size=512'], env: { PORT: 8080, DEBUG: false }, args: ['--x'] }, file);
  t.is(config.entry, '/srv/app/src/app.js', 'relative to the file');
  t.deepEqual(Object.fromEntries(config.flags), { instances: '4', grace: '30', 'wait-ready': true, 'node-arg': ['--max-old-space-size=512'] });
  t.deepEqual(config.env, { PORT: '8080', DEBUG: 'false' });
  t.deepEqual(config.args, ['--x']);
});

test('paths in the file are relative to the file: the log file, the token files, a dashboard socket; addresses stay as they are', (t) => {
  const file = '/srv/app/clusterd.config.json';
  const config = parseConfig({ logFile: 'logs/app.log', controlTokenFile: '../secrets/control', dashboardTokenFile: '/etc/clusterd/dash', dashboard: './run/dash.sock' }, file);
  t.deepEqual(Object.fromEntries(config.flags), {
    'log-file': '/srv/app/logs/app.log',
    'control-token-file': '/srv/secrets/control',
    'dashboard-token-file': '/etc/clusterd/dash',
    dashboard: '/srv/app/run/dash.sock',
  });
  t.is(parseConfig({ dashboard: 'dash.sock' }, file).flags.get('dashboard'), '/srv/app/dash.sock');
  for (const address of ['127.0.0.1:7071', '7071', '[::1]:7071']) t.is(parseConfig({ dashboard: address }, file).flags.get('dashboard'), address);
  // A trailing slash (a directory's name) is kept, for the parser to refuse, as on the command line.
  t.is(parseConfig({ dashboard: 'run/' }, file).flags.get('dashboard'), '/srv/app/run/');
  // start()'s options are relative to its cwd, though the master reads them from a file elsewhere.
  t.deepEqual(withAbsolutePaths({ entry: '/srv/app/a.js', instances: 2, logFile: 'app.log', controlTokenFile: 'secret', dashboard: '127.0.0.1:7071' }, '/home/me/app'), {
    entry: '/srv/app/a.js',
    instances: 2,
    logFile: '/home/me/app/app.log',
    controlTokenFile: '/home/me/app/secret',
    dashboard: '127.0.0.1:7071',
  });
});

test('a path in the file written with a trailing slash is relative to the file too, not to where start ran', (t) => {
  // `cwd: "wd/"` was left as given, and found from the current directory: refused (ENOENT) though
  // the file's wd existed, or, with a wd where start ran, that one used instead without a word.
  const dir = scratch(t);
  mkdirSync(join(dir, 'sv', 'wd'), { recursive: true });
  copyFileSync(fixture('hello.js'), join(dir, 'app.js'));
  const file = join(dir, 'sv', 'c2.json');
  const config = parseConfig({ entry: '../app.js', cwd: 'wd/', logFile: 'logs/' }, file);
  t.is(config.flags.get('cwd'), join(dir, 'sv', 'wd') + '/');
  t.is(config.flags.get('log-file'), join(dir, 'sv', 'logs') + '/', 'the slash kept: a directory is no log file');
  t.not(process.cwd(), join(dir, 'sv'));
  t.is(masterOptions(startSettings({}, parseConfig({ entry: '../app.js', cwd: 'wd/' }, file))).cluster.entry.cwd, join(dir, 'sv', 'wd'));
  t.is(parseConfig({ cwd: '/' }, file).flags.get('cwd'), '/');
});

test('flags win over the file, the file over the defaults; a refused file value names the key and the file', (t) => {
  const dir = scratch(t);
  const app = join(dir, 'app.js');
  copyFileSync(fixture('config-app.js'), app);
  const file = join(dir, 'clusterd.config.json');
  const config = parseConfig({ entry: 'app.js', instances: 3, grace: '20s', balance: 'rr', args: ['from-file'] }, file);
  const settings = startSettings({ grace: '5', '--': [] }, config);
  const options = masterOptions(settings);
  t.is(options.cluster.instances, 3);
  t.is(options.cluster.graceMs, 5000, 'the flag');
  t.is(options.cluster.balance, 'rr', 'the file');
  t.is(options.cluster.watchdogMs, 5000, 'the default');
  t.is(options.cluster.entry.path, app);
  t.deepEqual(options.cluster.args, ['from-file']);
  t.deepEqual(masterOptions(startSettings({ entry: app, '--': ['from-cli'] }, config)).cluster.args, ['from-cli'], 'arguments after -- win');

  // A token on the command line wins over the file's token file (it read as both given), and a token file over its token.
  writeFileSync(join(dir, 'token.txt'), 'from-the-file\n');
  const tokens = parseConfig({ entry: 'app.js', control: '127.0.0.1:0', controlTokenFile: 'token.txt', dashboard: '127.0.0.1:0', dashboardToken: 'dash-from-file' }, file);
  const overridden = masterOptions(startSettings({ 'control-token': 'from-the-flag', 'dashboard-token-file': join(dir, 'token.txt') }, tokens));
  t.is(overridden.controlTcp?.token, 'from-the-flag');
  t.is(overridden.dashboard?.token, 'from-the-file');
  t.is(masterOptions(startSettings({}, tokens)).controlTcp?.token, 'from-the-file');

  usage(t, () => masterOptions(startSettings({}, parseConfig({ entry: 'app.js', grace: '10x' }, file))), new RegExp(`^${file}: Expected \`grace\` to be 0 \\(off\\) or a duration|^${file}: Expected \`grace\` to be a duration from 0ms`));
  usage(t, () => masterOptions(startSettings({}, parseConfig({ entry: 'app.js', instances: 0 }, file))), /: Expected `instances` to be an integer from 1 to 1024 or `max`, got `0`$/);
  usage(t, () => masterOptions(startSettings({ grace: '10x' }, parseConfig({ entry: 'app.js' }, file))), /^Expected `--grace` to be/);
  usage(t, () => startSettings({}, null), /^Missing the app to run: `clusterd start <entry>`, or `entry` in a config file/);
});

test("a check across values, or of the entry, names the file and its keys when the file gave them, not flags nobody typed", (t) => {
  const dir = scratch(t);
  copyFileSync(fixture('config-app.js'), join(dir, 'app.js'));
  const file = join(dir, 'clusterd.config.json');
  const options = (args: Record<string, unknown>, config: Record<string, unknown>) => () => masterOptions(startSettings(args, parseConfig(config, file)));
  const line = (text: string): RegExp => new RegExp(`^${(file + ': ' + text).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
  usage(t, options({}, { entry: 'app.js', logMaxSize: '1M' }), line('`logMaxSize` rotates the `logFile`: give one (or run with -d, whose log is a file)'));
  usage(t, options({}, { entry: 'app.js', maxMemory: '100M', statsInterval: 0 }), line("`maxMemory` is judged from the workers' stats, which `statsInterval` 0 turns off: give an interval, or no limit"));
  usage(t, options({ 'stats-interval': '0' }, { entry: 'app.js', maxMemory: '100M' }), line("`maxMemory` is judged from the workers' stats, which `--stats-interval` 0 turns off: give an interval, or no limit"));
  usage(t, options({ 'max-memory': '100M' }, { entry: 'app.js', statsInterval: 0 }), line("`--max-memory` is judged from the workers' stats, which `statsInterval` 0 turns off: give an interval, or no limit"));
  usage(t, options({}, { entry: 'nope.js' }), line(`entry file not found: ${join(dir, 'nope.js')}`));
  // Given on the command line, they are the command line's.
  usage(t, options({ entry: join(dir, 'nope.js') }, { entry: 'app.js' }), /^entry file not found: /);
  usage(t, options({ 'log-max-size': '1M' }, { entry: 'app.js' }), /^`--log-max-size` rotates the `--log-file`/);
});

test("a file's value that a flag replaces is checked all the same; only its own checks, not those across values", (t) => {
  // `{"instances": 1.5}` with -i 1 started, the mistake in the file unseen until the flag was dropped.
  const dir = scratch(t);
  copyFileSync(fixture('config-app.js'), join(dir, 'app.js'));
  const file = join(dir, 'clusterd.config.json');
  const options = (args: Record<string, unknown>, config: Record<string, unknown>) => () => masterOptions(startSettings(args, parseConfig(config, file)));
  usage(t, options({ instances: '1' }, { entry: 'app.js', instances: 1.5 }), new RegExp(`^${file}: Expected \`instances\` to be an integer from 1 to 1024 or \`max\`, got \`1\\.5\` \\(though \`--instances\` replaces it\\)$`));
  usage(t, options({ grace: '1s' }, { entry: 'app.js', grace: '10x' }), /: Expected `grace` to be a duration .*, got `10x` \(though `--grace` replaces it\)$/);
  usage(t, options({ 'log-file': join(dir, 'app.log') }, { entry: 'app.js', logFile: 'logs/' }), /: Expected `logFile` to be a file's path, not a directory's, .* \(though `--log-file` replaces it\)$/);
  // A control token is checked without `control` too, as the schema checks it.
  usage(t, options({}, { entry: 'app.js', controlToken: ' ab' }), new RegExp(`^${file}: Expected \`controlToken\` to hold a non-empty token of printable ASCII characters on one line, without leading or trailing spaces$`));
  usage(t, options({ 'control-token': 'good' }, { entry: 'app.js', controlToken: 'é' }), /: Expected `controlToken` to hold a non-empty token .* \(though `--control-token` replaces it\)$/);
  // Each value is right by itself: the flag's statsInterval is the one used with the file's maxMemory.
  t.is(options({ 'stats-interval': '1s' }, { entry: 'app.js', maxMemory: '100M', statsInterval: 0 })().cluster.statsIntervalMs, 1000);
  t.is(options({ instances: '1' }, { entry: 'app.js', instances: 3 })().cluster.instances, 1);
});

test('the config file is found in the current directory, as .json, .mjs, .js or .ts; two of them, or a broken one, is an error', async (t) => {
  const dir = scratch(t);
  t.is(await loadConfig(undefined, dir), null);
  await t.throwsAsync(loadConfig('missing.json', dir), { instanceOf: UsageError, message: /^--config: .*missing\.json does not exist$/ });

  writeFileSync(join(dir, 'clusterd.config.mjs'), 'export default async () => ({ instances: 2, env: { A: "1" } });\n');
  t.deepEqual(Object.fromEntries((await loadConfig(undefined, dir))!.flags), { instances: '2' });
  writeFileSync(join(dir, 'clusterd.config.json'), '{ "instances": ');
  await t.throwsAsync(loadConfig(undefined, dir), { instanceOf: UsageError, message: /two config files in .*; keep one, or pick one with --config$/ });
  await t.throwsAsync(loadConfig('clusterd.config.json', dir), { instanceOf: UsageError, message: /clusterd\.config\.json: not valid JSON: / });
  rmSync(join(dir, 'clusterd.config.json'));
  rmSync(join(dir, 'clusterd.config.mjs'));

  mkdirSync(join(dir, 'deploy'));
  writeFileSync(join(dir, 'deploy', 'prod.ts'), 'const instances: number = 3;\nexport default { instances, grace: 30 };\n');
  const ts = (await loadConfig('deploy/prod.ts', dir))!;
  t.deepEqual(Object.fromEntries(ts.flags), { instances: '3', grace: '30' });
  writeFileSync(join(dir, 'clusterd.config.js'), 'throw new Error("no database url");\n');
  await t.throwsAsync(loadConfig(undefined, dir), { instanceOf: UsageError, message: /clusterd\.config\.js: no database url$/ });
  // (Another file: a module is loaded once per process.)
  writeFileSync(join(dir, 'named-only.mjs'), 'export const instances = 2;\n');
  await t.throwsAsync(loadConfig('named-only.mjs', dir), { instanceOf: UsageError, message: /named-only\.mjs: has no default export/ });
});

test('a syntax error in a JSON config names its line and column, not only its offset (Node 20 names only that)', async (t) => {
  const dir = scratch(t);
  // A comment, which JSON has not: the property name expected at line 2, column 2.
  writeFileSync(join(dir, 'c.json'), '{\n // c\n "entry":"../app.js"}');
  const result = await execa(process.execPath, [CLI, 'start', '--config', 'c.json'], { cwd: dir, reject: false, timeout: 30_000 });
  t.is(result.exitCode, ExitCode.USAGE);
  t.regex(result.stderr, new RegExp(`^clusterd: ${join(dir, 'c.json').replace(/[.]/g, '\\.')}: not valid JSON: .* \\(line 2 column 2\\)$`));
  // A byte-order mark is no column.
  writeFileSync(join(dir, 'clusterd.config.json'), '\uFEFF{ "instances": 2,\n  }\n');
  await t.throwsAsync(loadConfig(undefined, dir), { instanceOf: UsageError, message: /clusterd\.config\.json: not valid JSON: .*\(line 2 column 3\)$/ });
});

test('a clusterd.config.json saved with a UTF-8 byte-order mark is read, as require() reads one', async (t) => {
  const dir = scratch(t);
  writeFileSync(join(dir, 'clusterd.config.json'), '\uFEFF{ "instances": 2 }\n');
  t.deepEqual(Object.fromEntries((await loadConfig(undefined, dir))!.flags), { instances: '2' });
});

test('a config that is not a regular file of a config\'s size is refused at once: a FIFO (it hung), /dev/zero (it filled memory), a directory, 2 MiB', async (t) => {
  const dir = scratch(t);
  await execa('mkfifo', [join(dir, 'fifo.json')]);
  symlinkSync('/dev/zero', join(dir, 'zero.json'));
  mkdirSync(join(dir, 'dir.json'));
  writeFileSync(join(dir, 'big.json'), `{"instances": 2, "env": {"A": "${'x'.repeat(2 * 1024 * 1024)}"}}`);
  await t.throwsAsync(loadConfig('fifo.json', dir), { instanceOf: UsageError, message: /fifo\.json: not a regular file$/ });
  await t.throwsAsync(loadConfig('zero.json', dir), { instanceOf: UsageError, message: /zero\.json: not a regular file$/ });
  await t.throwsAsync(loadConfig('dir.json', dir), { instanceOf: UsageError, message: /dir\.json: not a regular file \(a directory\)$/ });
  await t.throwsAsync(loadConfig('big.json', dir), { instanceOf: UsageError, message: /big\.json: \d+ bytes, more than a config file's 1048576: is it the right file\?$/ });
  // The modules too: importing a FIFO would hang as well.
  await execa('mkfifo', [join(dir, 'fifo.mjs')]);
  await t.throwsAsync(loadConfig('fifo.mjs', dir), { instanceOf: UsageError, message: /fifo\.mjs: not a regular file$/ });
});

test('the JSON Schema has every option under its key, and agrees with the parser on what is valid', (t) => {
  const schema = configSchema('0.0.0');
  for (const spec of START_OPTIONS) t.truthy(schema.properties![configKey(spec.flag)], spec.flag);
  t.deepEqual(Object.keys(schema.properties!).sort(), ['$schema', 'args', 'entry', 'env', ...START_OPTIONS.map((spec) => configKey(spec.flag))].sort());
  // The one the build publishes is this one.
  const built = JSON.parse(readFileSync(new URL('../../dist/clusterd.config.schema.json', import.meta.url), 'utf8')) as { properties: object };
  t.deepEqual(Object.keys(built.properties).sort(), Object.keys(schema.properties!).sort());

  const validate = new Ajv2020({ strict: true, allowUnionTypes: true }).compile(schema);
  const file = '/srv/clusterd.config.json';
  const accepted = (config: Record<string, unknown>): boolean => {
    try {
      masterOptions(startSettings({}, parseConfig({ entry: fixture('hello.js'), ...config }, file)));
      return true;
    } catch (error) {
      if (error instanceof UsageError) return false;
      throw error;
    }
  };
  const cases: Record<string, unknown>[] = [
    { instances: 4 },
    { instances: 'max' },
    { instances: 0 },
    { instances: 'four' },
    { grace: 10 },
    { grace: '500ms' },
    { grace: '10x' },
    { grace: false },
    { balance: 'least' },
    { balance: 'random' },
    { waitReady: true },
    { waitReady: 'true' },
    { maxMemory: '512M' },
    { maxMemory: 'lots' },
    { killSignal: 'SIGINT' },
    { killSignal: 'SIGKILL' },
    { killSignal: 'TERM' },
    { logFormat: 'json' },
    { logFormat: 'xml' },
    { nodeArg: ['--max-old-space-size=256'] },
    { nodeArg: '--max-old-space-size=256' },
    { metrics: '127.0.0.1:9090' },
    { metrics: 'nowhere' },
    { env: { PORT: 8080 } },
    { env: { 'no-dash': '1' } },
    { args: ['--verbose'] },
    { args: '--verbose' },
    { name: 'api' },
    { name: '../etc' },
    { unknownKey: 1 },
    // Numbers written as numbers, and as text, as the parsers read them (trimmed); the parsers' ranges
    // on numbers, ports and whole numbers in text.
    { dashboard: 7071 },
    { dashboard: '7071' },
    { dashboard: ' 7071 ' },
    { dashboard: 65_536 },
    { dashboard: '99999' },
    { dashboard: 7071.5 },
    { dashboard: './dash.sock' },
    { dashboard: 'run/' },
    { dashboard: '[::1]:7071' },
    { instances: '4' },
    { instances: ' 0004 ' },
    { instances: '0' },
    { instances: '1025' },
    { instances: 1025 },
    { instances: ' max ' },
    { maxBootFailures: '3' },
    { maxBootFailures: '1001' },
    { maxBootFailures: 0 },
    { logKeep: '5' },
    { logKeep: '0' },
    { logKeep: '101' },
    { grace: ' 10s' },
    { grace: 0 },
    { grace: 2_147_483.647 },
    { grace: 2_147_483.648 },
    { grace: 1e10 },
    { listenTimeout: 0 },
    { listenTimeout: 0.001 },
    { statsInterval: 0 },
    { statsInterval: 0.01 },
    { statsInterval: 0.005 },
    { watchdog: 0.009 },
    { reportBlocked: 0.001 },
    { shutdownDelay: 0 },
    { maxMemory: 0 },
    { maxMemory: 16 * 1024 ** 2 },
    { maxMemory: 16 * 1024 ** 2 - 1 },
    { maxMemory: 1024 ** 4 + 1 },
    { maxMemory: 16_777_216.5 },
    { maxMemory: ' 512M ' },
    { logFile: 'app.log', logMaxSize: 1023 },
    { logFile: 'app.log', logMaxSize: 1024 },
    { metrics: '127.0.0.1:65535' },
    { metrics: '127.0.0.1:65536' },
    { metrics: '127.0.0.1:09464' },
    { metrics: '127.0.0.1:009464' },
    { health: '[::1]:99999' },
    { health: ' [::1]:9100 ' },
    { control: 'a:b:9464', controlToken: 'secret' },
    { control: '127.0.0.1:70000', controlToken: 'secret' },
    { control: '127.0.0.1:7070', controlToken: '' },
    { control: '127.0.0.1:7070', controlToken: ' secret' },
    { control: '127.0.0.1:7070', controlToken: 'secret' },
    { dashboard: '127.0.0.1:7071', dashboardToken: '' },
    { dashboard: '127.0.0.1:7071', dashboardToken: 'secret' },
    { dashboardToken: 'secret' },
    // A duration's range is judged before it is rounded to the millisecond, by both: a value that
    // rounds into it is out (start took these, which the schema refused); 0 as text where 0 is not
    // taken (the schema took it, which start refused).
    { listenTimeout: 0.0005 },
    { listenTimeout: 0.0015 },
    { statsInterval: 0.0095 },
    { watchdog: 0.0105 },
    { grace: 2_147_483.6474 },
    { grace: 0.0004 },
    { grace: 0.0005 },
    { shutdownDelay: 0.0009 },
    { listenTimeout: '0' },
    { listenTimeout: ' 0.0ms ' },
    { listenTimeout: '00s' },
    { listenTimeout: '0.5' },
    { statsInterval: '0' },
    { grace: '0' },
    // A control token is checked whether or not `control` is given (start took any without it).
    { controlToken: ' ab' },
    { controlToken: 'é' },
    { controlToken: '' },
    { controlToken: 'secret' },
    { controlTokenFile: 'token.txt' },
    { logFile: 'logs/' },
    { logFile: ' ' },
  ];
  for (const config of cases) {
    t.is(validate({ entry: 'app.js', ...config }), accepted(config), JSON.stringify(config));
  }
});

test('clusterd start with no entry runs the config file\'s, with its env and args; a flag overrides it', async (t) => {
  const dir = scratch(t);
  copyFileSync(fixture('config-app.js'), join(dir, 'app.js'));
  writeFileSync(
    join(dir, 'clusterd.config.json'),
    JSON.stringify({ $schema: './node_modules/clusterd/dist/clusterd.config.schema.json', entry: 'app.js', instances: 2, env: { GREETING: 'hello from the file' }, args: ['--from', 'file'], name: 'configured' }),
  );
  const master = launch(['start', '-i', '1', '--log-format', 'json'], { cwd: dir });
  t.teardown(() => master.process.kill('SIGKILL'));
  const ready = await master.waitForLine((line) => line.event === 'ready', 20_000);
  t.is((ready.workers as unknown[]).length, 1, '-i 1 on the command line wins');
  t.regex(ready.message, /^configured ready on /);
  const port = Number((ready.addresses as string[])[0]!.split(':').pop());
  const answer = JSON.parse((await get(port)).body) as { greeting: string; args: string[] };
  t.deepEqual(answer, { ...answer, greeting: 'hello from the file', args: ['--from', 'file'] });
  master.process.kill('SIGTERM');
  t.is(await master.exited, 0);

  writeFileSync(join(dir, 'clusterd.config.json'), JSON.stringify({ entry: 'app.js', graceMs: 10 }));
  const bad = await execa(process.execPath, [CLI, 'start'], { cwd: dir, reject: false });
  t.is(bad.exitCode, ExitCode.USAGE);
  t.is(bad.stderr, `clusterd: ${join(dir, 'clusterd.config.json')}: unknown key \`graceMs\` (did you mean \`grace\`?); the keys are entry, env, args, ${START_OPTIONS.map((spec) => configKey(spec.flag)).join(', ')}`);
});

test("a config file's logFile that cannot be opened names the file and the key, in the foreground and with -d; the flag names the flag", async (t) => {
  const dir = scratch(t);
  copyFileSync(fixture('hello.js'), join(dir, 'app.js'));
  const file = join(dir, 'clusterd.config.json');
  writeFileSync(file, JSON.stringify({ entry: 'app.js', instances: 1, name: 'unlogged', logFile: 'logs/x.log' }));
  const env = { CLUSTERD_RUNTIME_DIR: join(dir, 'runtime') };
  const missing = join(dir, 'logs', 'x.log');
  for (const daemon of [[], ['-d']]) {
    const result = await execa(process.execPath, [CLI, 'start', ...daemon], { cwd: dir, env, reject: false, timeout: 30_000 });
    t.is(result.exitCode, ExitCode.USAGE, result.stderr);
    t.is(result.stderr, `clusterd: ${file}: \`logFile\`: cannot open ${missing}: ENOENT: no such file or directory, open '${missing}'`, daemon.join(''));
  }
  const flagged = await execa(process.execPath, [CLI, 'start', '--log-file', missing], { cwd: dir, env, reject: false, timeout: 30_000 });
  t.is(flagged.stderr, `clusterd: --log-file: cannot open ${missing}: ENOENT: no such file or directory, open '${missing}'`);
});

test('a config module runs in a process of its own: what it leaves running (a timer that throws later) is not in the master', async (t) => {
  // Imported into the process that becomes the master, such a timer took the running cluster down
  // ("internal error", the workers killed, requests cut).
  const dir = scratch(t);
  copyFileSync(fixture('config-app.js'), join(dir, 'app.js'));
  const marker = join(dir, 'loaded-in');
  writeFileSync(
    join(dir, 'clusterd.config.mjs'),
    `import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(marker)}, String(process.pid));\nsetInterval(() => { throw new Error('config timer boom'); }, 1000);\nexport default { entry: 'app.js', instances: 1, name: 'cfgisolated' };\n`,
  );
  const master = launch(['start', '--log-format', 'json'], { cwd: dir });
  t.teardown(() => master.process.kill('SIGKILL'));
  const ready = await master.waitForLine((line) => line.event === 'ready', 20_000);
  const loader = Number(readFileSync(marker, 'utf8'));
  t.not(loader, ready.pid as number);
  t.not(loader, master.process.pid);
  t.false(isAlive(loader), 'the loading process ended once it gave its options');
  const port = Number((ready.addresses as string[])[0]!.split(':').pop());
  t.is((await get(port)).status, 200);
  master.process.kill('SIGTERM');
  t.is(await master.exited, 0);
});

test('a key a module sets to undefined is a key not given, as for start()', (t) => {
  const config = parseConfig({ entry: 'app.js', instances: undefined, grace: '3s' }, '/srv/app/clusterd.config.mjs');
  t.false(config.flags.has('instances'));
  t.is(config.flags.get('grace'), '3s');
});

test('a .ts config file is compiled with its own nearest tsconfig.json (its paths), from whatever directory start runs in', async (t) => {
  const dir = scratch(t);
  mkdirSync(join(dir, 'src', 'lib'), { recursive: true });
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { baseUrl: '.', paths: { '@lib/*': ['src/lib/*'] } } }));
  writeFileSync(join(dir, 'src', 'lib', 'sizes.ts'), 'export const workers: number = 3;\n');
  writeFileSync(join(dir, 'clusterd.config.ts'), "import { workers } from '@lib/sizes';\nexport default { entry: 'app.js', instances: workers };\n");
  // From another directory, whose tsconfig.json (none here) tsx would have taken.
  const elsewhere = scratch(t);
  const config = await loadConfig(join(dir, 'clusterd.config.ts'), elsewhere);
  t.is(config?.flags.get('instances'), '3');
});

test("a config module's own output goes to stderr: clusterd's stdout is its own lines (one JSON object each with --log-format json)", async (t) => {
  const dir = scratch(t);
  writeFileSync(join(dir, 'clusterd.config.mjs'), "console.log('loading the config');\nexport default { entry: 'missing.js' };\n");
  const result = await execa(process.execPath, [CLI, 'start', '--log-format', 'json'], { cwd: dir, reject: false, timeout: 30_000 });
  t.is(result.exitCode, ExitCode.USAGE);
  t.is(result.stdout, '');
  t.regex(result.stderr, /^loading the config$/m);
});

test('a syntax error in a .mjs or .js config names its place, as a .ts one does', async (t) => {
  // An ES module's SyntaxError has no place in its message or stack: `a.mjs: Unexpected end of input`.
  const dir = scratch(t);
  writeFileSync(join(dir, 'unended.mjs'), 'export default {\n  instances: 2,\n');
  writeFileSync(join(dir, 'operator.mjs'), 'export default { instances: 2 +* 3 };\n');
  writeFileSync(join(dir, 'common.cjs'), 'module.exports = {\n  instances: 2 +* 3 };\n');
  // The path once: it was put before the place a second time (`a.mjs: a.mjs:1:32: ...`).
  await t.throwsAsync(loadConfig('unended.mjs', dir), { instanceOf: UsageError, message: `${join(dir, 'unended.mjs')}:3: Unexpected end of input` });
  await t.throwsAsync(loadConfig('operator.mjs', dir), { instanceOf: UsageError, message: `${join(dir, 'operator.mjs')}:1:32: Unexpected token '*'` });
  await t.throwsAsync(loadConfig('common.cjs', dir), { instanceOf: UsageError, message: `${join(dir, 'common.cjs')}:2:17: Unexpected token '*'` });
  // tsx's, alike, its column counted from 1 as Node's is.
  writeFileSync(join(dir, 'operator.ts'), 'export default {\n  instances: 2 +* 3 };\n');
  await t.throwsAsync(loadConfig('operator.ts', dir), { instanceOf: UsageError, message: `${join(dir, 'operator.ts')}:2:17: Unexpected "*"` });
  // Through the CLI: one line, the path once.
  const result = await execa(process.execPath, [CLI, 'start', '--config', join(dir, 'operator.mjs')], { reject: false, timeout: 30_000 });
  t.is(result.exitCode, ExitCode.USAGE);
  t.is(result.stderr, `clusterd: ${join(dir, 'operator.mjs')}:1:32: Unexpected token '*'`);
});

test('loadError: the path once, before a message that does not name it', (t) => {
  t.is(loadError('/a/c.mjs', "/a/c.mjs:3:14: Unexpected token '*'"), "/a/c.mjs:3:14: Unexpected token '*'");
  t.is(loadError('/a/c.ts', 'Transform failed with 1 error: /a/c.ts:3:0: ERROR: Expected identifier but found end of file'), '/a/c.ts:3:1: Expected identifier but found end of file');
  t.is(loadError('/a/c.mjs', 'has no default export (export default { ... })'), '/a/c.mjs: has no default export (export default { ... })');
  // Another file's place (an import the config makes) is not this file's.
  t.is(loadError('/a/c.mjs', "/a/c.mjs.d/x.mjs:1:1: Unexpected token '*'"), "/a/c.mjs: /a/c.mjs.d/x.mjs:1:1: Unexpected token '*'");
});
