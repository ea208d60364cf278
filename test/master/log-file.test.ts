// --log-file, --log-max-size, --log-keep: lines in a file with their time, rotation by size, SIGUSR1
// to reopen after logrotate moved the file, and operations logged with who asked.
import test from 'ava';
import { execa } from 'execa';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LogFile } from '../../src/master/log-file.js';
import { ExitCode } from '../../src/exit-codes.js';
import { CLI, fixture, get, isRunning, launch, startCluster, waitFor } from '../helpers/cluster.js';
import { control } from '../helpers/control.js';

function scratch(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-logfile-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('LogFile rotates before a write would pass the size, keeping the newest files as FILE.1, FILE.2', (t) => {
  const path = join(scratch(t), 'app.log');
  const file = new LogFile({ path, maxSize: 100, keep: 2 });
  t.teardown(() => file.close());
  for (let i = 0; i < 10; i++) file.write(`line ${i} ${'x'.repeat(30)}\n`);
  const read = (suffix: string) => readFileSync(path + suffix, 'utf8').trim().split('\n').map((line) => line.split(' ')[1]);
  // 39 bytes a line: two fit in 100.
  t.deepEqual(read(''), ['8', '9']);
  t.deepEqual(read('.1'), ['6', '7']);
  t.deepEqual(read('.2'), ['4', '5']);
  t.false(existsSync(`${path}.3`), 'older ones are deleted');

  const single = new LogFile({ path: join(scratch(t), 'single.log'), maxSize: 100, keep: 0 });
  t.teardown(() => single.close());
  for (let i = 0; i < 5; i++) single.write(`line ${i} ${'x'.repeat(30)}\n`);
  t.is(readFileSync(single.path, 'utf8').split('\n').length - 1, 1, 'keep 0: emptied, nothing kept');
});

test('LogFile.reopen: after the file was moved away, lines go to a new one', (t) => {
  const path = join(scratch(t), 'app.log');
  const file = new LogFile({ path, maxSize: null, keep: 5 });
  t.teardown(() => file.close());
  file.write('before\n');
  renameSync(path, `${path}.moved`);
  file.write('still the old file\n');
  file.reopen();
  file.write('after\n');
  t.is(readFileSync(`${path}.moved`, 'utf8'), 'before\nstill the old file\n');
  t.is(readFileSync(path, 'utf8'), 'after\n');
});

test('start --log-file: timestamped lines, rotation, SIGUSR1 reopens, operations say who asked', async (t) => {
  const ctl = control(t);
  const dir = scratch(t);
  const path = join(dir, 'cluster.log');
  const master = launch(['start', fixture('logs-per-request.js'), '-i', '1', '--name', 'filed', '--log-file', path, '--log-max-size', '2K', '--log-keep', '2'], { env: ctl.env });
  t.teardown(() => master.process.kill('SIGKILL'));
  const port = await waitFor(() => {
    const match = existsSync(path) ? / ready on 127\.0\.0\.1:(\d+)/.exec(readFileSync(path, 'utf8')) : null;
    return match ? Number(match[1]) : null;
  }, { timeoutMs: 20_000, what: 'the ready line in the log file' });
  t.deepEqual(master.lines, [], 'nothing on stdout');
  const text = readFileSync(path, 'utf8');
  t.regex(text, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z clusterd: filed ready on /m);

  for (let i = 0; i < 40; i++) await get(port, `/request-${i}`);
  await waitFor(() => existsSync(`${path}.1`) && readFileSync(path, 'utf8').includes('/request-39'), { what: 'a rotation and the last request line' });
  t.regex(readFileSync(path, 'utf8'), /^\d{4}-\d\d-\d\dT[\d:.]+Z \[w1\] (out|err) \/request-39$/m);
  t.false(existsSync(`${path}.3`));

  renameSync(path, `${path}.rotated-by-logrotate`);
  const pid = Number(/"masterPid": (\d+)/.exec((await ctl.run(['status', 'filed', '--json'])).stdout as string)![1]);
  process.kill(pid, 'SIGUSR1');
  await waitFor(() => existsSync(path) && readFileSync(path, 'utf8').includes('reopened (SIGUSR1)'), { what: 'a new file after SIGUSR1' });
  await get(port, '/after-reopen');
  await waitFor(() => readFileSync(path, 'utf8').includes('/after-reopen'), { what: 'lines in the new file' });

  const reload = await ctl.run(['reload', 'filed']);
  t.is(reload.exitCode, 0, String(reload.stderr));
  await waitFor(() => /clusterd: reload \(1 at a time\) asked by the control socket/.test(readFileSync(path, 'utf8')), { what: 'the reload logged with who asked' });
  t.regex(readFileSync(path, 'utf8'), /clusterd: reload \(1 at a time\) done/);
  const stop = await ctl.run(['stop', 'filed']);
  t.is(stop.exitCode, 0);
  t.is(await master.exited, 0);
  t.regex(readFileSync(path, 'utf8'), /clusterd: stop asked by the control socket/);
});

test('--log-max-size without a log file, or a bad --log-keep, is one line and exit 2', async (t) => {
  const alone = await execa(process.execPath, [CLI, 'start', fixture('hello.js'), '--log-max-size', '10M'], { reject: false });
  t.is(alone.exitCode, ExitCode.USAGE);
  t.is(alone.stderr, 'clusterd: `--log-max-size` rotates the --log-file: give one (or run with -d, whose log is a file)');
  const keep = await execa(process.execPath, [CLI, 'start', fixture('hello.js'), '--log-file', '/tmp/x.log', '--log-keep', '1000'], { reject: false });
  t.is(keep.exitCode, ExitCode.USAGE);
  t.is(keep.stderr, 'clusterd: Expected `--log-keep` to be an integer from 0 to 100, got `1000`');
});

test('SIGUSR1 without a log file is heard and ignored: the master opens no inspector', async (t) => {
  // Unheard, Node would open an inspector on 127.0.0.1:9229 (any local user could run code as the
  // master there), and any app in a worker can send its master the signal.
  const cluster = await startCluster(fixture('hello.js'), { instances: 1 });
  t.teardown(() => cluster.stop('SIGKILL'));
  process.kill(cluster.masterPid, 'SIGUSR1');
  const ignored = await cluster.waitForLine((line) => line.event === 'signal-ignored');
  t.true(ignored.message.includes('SIGUSR1 ignored'), ignored.message);
  // The inspector says so on the master's stderr as it opens; the cluster serves on.
  t.is((await get(cluster.port)).status, 200);
  t.false(cluster.stderr.some((line) => line.includes('Debugger listening')), cluster.stderr.join('\n'));
  t.true(isRunning(cluster.masterPid));
});
