// --log-file, --log-max-size, --log-keep: lines in a file with their time, rotation by size, SIGUSR1
// to reopen after logrotate moved the file, and operations logged with who asked.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { execa } from 'execa';
import fs, { chmodSync, chownSync, existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync, type PathLike } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LogFile, notOwnFile } from '../../src/master/log-file.js';
import { UsageError } from '../../src/errors.js';
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
  const inode = statSync(single.path).ino;
  for (let i = 0; i < 5; i++) single.write(`line ${i} ${'x'.repeat(30)}\n`);
  t.is(readFileSync(single.path, 'utf8').split('\n').length - 1, 1, 'keep 0: emptied, nothing kept');
  // Emptied in place: the path never stood free for something else to be put there.
  t.is(statSync(single.path).ino, inode);
});

test('LogFile whose file was removed or moved away: the next rotation opens the path anew, keeps every old file, and writes every line', (t) => {
  for (const away of ['removed', 'moved'] as const) {
    const path = join(scratch(t), 'app.log');
    const file = new LogFile({ path, maxSize: 100, keep: 2 });
    t.teardown(() => file.close());
    let gone = 0;
    file.onGone = () => gone++;
    const read = (suffix: string) => readFileSync(path + suffix, 'utf8').trim().split('\n').map((line) => line.split(' ')[1]);
    // 39 bytes a line: two fit in 100.
    for (let i = 0; i < 6; i++) file.write(`line ${i} ${'x'.repeat(30)}\n`);
    if (away === 'removed') rmSync(path);
    else renameSync(path, `${path}.moved`);
    // The first of these would take the file past the size: the rotation finds the path empty.
    for (let i = 6; i < 8; i++) file.write(`line ${i} ${'x'.repeat(30)}\n`);
    t.is(gone, 1, away);
    t.deepEqual(read(''), ['6', '7'], `${away}: the lines after it, in a new file`);
    t.deepEqual(read('.1'), ['2', '3'], `${away}: the kept files as they were`);
    t.deepEqual(read('.2'), ['0', '1'], away);
    if (away === 'moved') t.deepEqual(read('.moved'), ['4', '5']);
    // And the next rotation is an ordinary one.
    file.write(`line 8 ${'x'.repeat(30)}\n`);
    t.deepEqual([read(''), read('.1'), read('.2')], [['8'], ['6', '7'], ['2', '3']], away);
    t.is(gone, 1);
  }
});

test('LogFile whose rotation fails writes the line on into the file and says why once on stderr', (t) => {
  const path = join(scratch(t), 'app.log');
  // FILE.1 a directory that is not empty: neither removed nor replaced by a rename.
  mkdirSync(`${path}.1`);
  writeFileSync(join(`${path}.1`, 'keep'), '');
  const file = new LogFile({ path, maxSize: 100, keep: 1 });
  t.teardown(() => file.close());
  const said: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string) => said.push(chunk) > 0) as typeof process.stderr.write;
  try {
    for (let i = 0; i < 6; i++) file.write(`line ${i} ${'x'.repeat(30)}\n`);
  } finally {
    process.stderr.write = write;
  }
  t.is(readFileSync(path, 'utf8').split('\n').length - 1, 6, 'no line lost');
  t.is(said.length, 1, said.join(''));
  t.regex(said[0]!, /^clusterd: rotating .*app\.log failed: .*; lines go on into it, past --log-max-size\n$/);
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

test('LogFile.reopen gives the new file the old one\'s mode; a file emptied by copytruncate is not rotated early', (t) => {
  const dir = scratch(t);
  const path = join(dir, 'app.log');
  const file = new LogFile({ path, maxSize: 100, keep: 2 });
  t.teardown(() => file.close());
  chmodSync(path, 0o600);
  renameSync(path, `${path}.moved`);
  file.reopen();
  t.is(statSync(path).mode & 0o777, 0o600, 'a log holds secrets: a rotation must not open it to the group');

  file.write(`one ${'x'.repeat(55)}\n`);
  // logrotate's copytruncate: the file is copied, then emptied in place.
  truncateSync(path, 0);
  file.write(`two ${'x'.repeat(55)}\n`);
  t.false(existsSync(`${path}.1`), 'no rotation: the file holds one line');
  t.is(readFileSync(path, 'utf8'), `two ${'x'.repeat(55)}\n`);
});

test('LogFile on a full disk: the line cut short is ended, and the lines not written are counted in the file once it takes them', async (t) => {
  // A file size limit (ulimit -f) fails a write part-way as a full disk does; Node ignores SIGXFSZ.
  const dir = scratch(t);
  const path = join(dir, 'app.log');
  const script = join(dir, 'fill.mjs');
  writeFileSync(
    script,
    `import { truncateSync } from 'node:fs';
import { LogFile } from ${JSON.stringify(new URL('../../dist/master/log-file.js', import.meta.url).href)};
const file = new LogFile({ path: ${JSON.stringify(path)}, maxSize: null, keep: 0 });
file.onRecovered = (lines, error) => file.write(\`not written: \${lines} (\${error})\\n\`);
// 13 lines of 300 bytes fit in 4096, and 196 bytes of the 14th.
for (let i = 0; i < 20; i++) file.write(\`line \${String(i).padStart(2, '0')} \${'x'.repeat(291)}\\n\`);
// Room again (as after a clean-up): 96 bytes, the end of the cut line kept.
truncateSync(${JSON.stringify(path)}, 4000);
file.write('after\\n');
`,
  );
  const run = await execa('bash', ['-c', `ulimit -f 4; exec "${process.execPath}" "${script}"`], { reject: false });
  t.is(run.exitCode, 0, run.stderr);
  t.regex(run.stderr, /^clusterd: writing .*app\.log failed: .*EFBIG/);
  const lines = readFileSync(path, 'utf8').split('\n');
  t.is(lines.length, 17);
  t.true(lines.slice(0, 13).every((line, i) => line.startsWith(`line ${String(i).padStart(2, '0')} `) && line.length === 299));
  t.is(lines[13], `line 13 ${'x'.repeat(92)}`, 'the cut line, ended');
  t.is(lines[14], 'after');
  t.is(lines[15], 'not written: 7 (EFBIG)');
  t.is(lines[16], '');
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

test('start --log-max-size: a log file removed under the master is opened anew at the next rotation; the kept files stay', async (t) => {
  const dir = scratch(t);
  const path = join(dir, 'cluster.log');
  const master = launch(['start', fixture('logs-per-request.js'), '-i', '1', '--name', 'removed', '--log-file', path, '--log-max-size', '1K', '--log-keep', '2']);
  t.teardown(() => master.process.kill('SIGKILL'));
  const port = await waitFor(() => {
    const match = existsSync(path) ? / ready on 127\.0\.0\.1:(\d+)/.exec(readFileSync(path, 'utf8')) : null;
    return match ? Number(match[1]) : null;
  }, { timeoutMs: 20_000, what: 'the ready line in the log file' });
  let request = 0;
  /** One request, and its two lines in the file (the last lines written are in FILE, whatever rotated). */
  const logged = async (): Promise<void> => {
    const url = `/request-${request++}`;
    await get(port, url);
    await waitFor(() => existsSync(path) && readFileSync(path, 'utf8').includes(`err ${url}\n`), { what: `the lines of ${url}` });
  };
  // Two rotations: FILE.1 and FILE.2 both hold lines.
  while (!existsSync(`${path}.2`)) await logged();
  const kept = [readFileSync(`${path}.1`, 'utf8'), readFileSync(`${path}.2`, 'utf8')];

  rmSync(path);
  const first = request;
  // Lines go to the removed file until one would take it past the size.
  await waitFor(async () => existsSync(path) || (await get(port, `/request-${request++}`), false), { what: 'a new file' });
  await logged();
  t.deepEqual([readFileSync(`${path}.1`, 'utf8'), readFileSync(`${path}.2`, 'utf8')], kept, 'no kept file deleted or shifted');
  const text = readFileSync(path, 'utf8');
  t.regex(text, /clusterd: log file .*cluster\.log was removed or moved away \(without SIGUSR1\): opened anew as it was to rotate/);
  // What was written to the removed file went with it; from the rotation on, every line is here.
  const from = Number(/\[w1\] (?:out|err) \/request-(\d+)$/m.exec(text)![1]);
  t.true(from > first, `${from} > ${first}`);
  for (let i = from + 1; i < request; i++) t.true(text.includes(`out /request-${i}\n`) && text.includes(`err /request-${i}\n`), `request ${i}`);
  t.false(master.stderr.some((line) => line.includes('failed')), master.stderr.join('\n'));
  t.false(existsSync(`${path}.3`));
});

test('--log-max-size without a log file, or a bad --log-keep, is one line and exit 2', async (t) => {
  const alone = await execa(process.execPath, [CLI, 'start', fixture('hello.js'), '--log-max-size', '10M'], { reject: false });
  t.is(alone.exitCode, ExitCode.USAGE);
  t.is(alone.stderr, 'clusterd: `--log-max-size` rotates the `--log-file`: give one (or run with -d, whose log is a file)');
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

/** Makes the master's renameSync (node:fs) run `after` once it renamed `from`: the gap a rotation leaves. */
function afterRename(t: { teardown(fn: () => void): void }, from: string, after: () => void): void {
  const original = fs.renameSync;
  fs.renameSync = ((source: PathLike, target: PathLike) => {
    original(source, target);
    if (source === from) after();
  }) as typeof fs.renameSync;
  syncBuiltinESMExports();
  t.teardown(() => {
    fs.renameSync = original;
    syncBuiltinESMExports();
  });
}

/** Runs `fn` with process.stderr's writes caught; returns them. */
function stderrOf(fn: () => void): string[] {
  const said: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string) => said.push(chunk) > 0) as typeof process.stderr.write;
  try {
    fn();
  } finally {
    process.stderr.write = write;
  }
  return said;
}

test('LogFile refuses a symbolic link or a second hard link at its path, before writing a byte through it', (t) => {
  const dir = scratch(t);
  // A directory every user may write to, sticky, as /tmp: where another user can plant links.
  chmodSync(dir, 0o1777);
  const victim = join(dir, 'victim');
  writeFileSync(victim, 'secret\n', { mode: 0o600 });
  const path = join(dir, 'app.log');
  symlinkSync(victim, path);
  t.throws(() => new LogFile({ path, given: '--log-file', maxSize: null, keep: 0 }), { instanceOf: UsageError, message: /^--log-file: cannot open .*app\.log: it is a symbolic link; refusing to follow it/ });
  rmSync(path);
  linkSync(victim, path);
  t.throws(() => new LogFile({ path, maxSize: null, keep: 0 }), { instanceOf: UsageError, message: /it has 2 hard links; refusing to write to it/ });
  rmSync(path);
  // Another user's file (root can make one): what they can read is no place for the master's lines.
  if (process.getuid?.() === 0) {
    writeFileSync(path, '');
    chownSync(path, 65534, 65534);
    t.throws(() => new LogFile({ path, maxSize: null, keep: 0 }), { instanceOf: UsageError, message: /it belongs to uid 65534, not to this user \(uid 0\); refusing to write to it/ });
  }
  t.is(readFileSync(victim, 'utf8'), 'secret\n');
  t.is(statSync(victim).mode & 0o777, 0o600);
  // In a directory of this user's alone nobody else put it there: a second link is written to.
  chmodSync(dir, 0o700);
  rmSync(path, { force: true });
  linkSync(victim, path);
  new LogFile({ path, maxSize: null, keep: 0 }).close();
});

test('LogFile in a directory every user may write to, not sticky, says so; a sticky one (/tmp) or a private one does not', (t) => {
  const dir = scratch(t);
  for (const [mode, open] of [[0o777, true], [0o1777, false], [0o700, false]] as const) {
    const sub = join(dir, mode.toString(8));
    mkdirSync(sub);
    chmodSync(sub, mode);
    const file = new LogFile({ path: join(sub, 'app.log'), maxSize: null, keep: 0 });
    file.close();
    if (open) t.regex(file.directoryOpen ?? '', /is writable by every user and not sticky \(mode 0777\): anyone may remove or replace the log/);
    else t.is(file.directoryOpen, null, mode.toString(8));
  }
});

test('notOwnFile: another user\'s file, a second link, or no regular file is not written to', (t) => {
  const file = (uid: number, nlink: number, isFile = true, isCharacterDevice = false) => ({ uid, nlink, isFile: () => isFile, isCharacterDevice: () => isCharacterDevice });
  t.is(notOwnFile(file(1000, 1), 1000), null);
  t.is(notOwnFile(file(1001, 1), 1000), 'it belongs to uid 1001, not to this user (uid 1000)');
  t.is(notOwnFile(file(0, 1), 1000), 'it belongs to uid 0, not to this user (uid 1000)');
  t.is(notOwnFile(file(1000, 2), 1000), 'it has 2 hard links');
  t.is(notOwnFile(file(1000, 1, false), 1000), 'it is not a regular file');
  // In a directory only this user or root may write to, nobody else put it there: another owner's
  // file (NFS's root_squash, one provisioned ahead) and a character device (/dev/null) are taken.
  t.is(notOwnFile(file(65534, 1), 0, false), null);
  t.is(notOwnFile(file(0, 2), 0, false), null);
  t.is(notOwnFile(file(0, 1, false, true), 0, false), null);
  t.is(notOwnFile(file(0, 1, false), 0, false), 'it is not a regular file');
});

test('a FIFO at the log path is refused at once, not waited on for a reader', (t) => {
  const dir = scratch(t);
  const path = join(dir, 'app.log');
  execFileSync('mkfifo', [path]);
  // Without O_NONBLOCK the open itself blocked until a reader came: this test would hang.
  t.throws(() => new LogFile({ path, maxSize: null, keep: 0 }), { message: /app\.log/ });
});

test('LogFile rotation: a symlink planted between the rename to FILE.1 and the new file is not written through; lines go on into FILE.1', (t) => {
  const dir = scratch(t);
  const victim = join(dir, 'victim');
  writeFileSync(victim, 'secret\n', { mode: 0o600 });
  const path = join(dir, 'app.log');
  const file = new LogFile({ path, maxSize: 100, keep: 1 });
  t.teardown(() => file.close());
  afterRename(t, path, () => symlinkSync(victim, path));
  const said = stderrOf(() => {
    for (let i = 0; i < 6; i++) file.write(`line ${i} ${'x'.repeat(30)}\n`);
  });
  t.is(readFileSync(victim, 'utf8'), 'secret\n', 'nothing written through the link');
  t.is(statSync(victim).mode & 0o777, 0o600);
  t.true(lstatSync(path).isSymbolicLink(), 'the link left as it was');
  t.is(readFileSync(`${path}.1`, 'utf8').split('\n').length - 1, 6, 'every line, in the file renamed to FILE.1');
  t.is(said.length, 1, said.join(''));
  t.regex(said[0]!, /^clusterd: rotating .*app\.log failed: something was put at .*app\.log between its rotation and the new file's creation/);
});

test('start: a --log-file path that is a symbolic link is one line, exit 2, and nothing is written through it', async (t) => {
  const dir = scratch(t);
  const victim = join(dir, 'victim');
  writeFileSync(victim, 'secret\n', { mode: 0o600 });
  const path = join(dir, 'app.log');
  symlinkSync(victim, path);
  const env = { CLUSTERD_RUNTIME_DIR: join(dir, 'run') };
  // A master that started after all (the link followed) is stopped: the foreground one by the timeout.
  t.teardown(() => execa(process.execPath, [CLI, 'stop', 'linked'], { reject: false, env }).then(() => {}));
  for (const daemon of [[], ['-d']]) {
    const run = await execa(process.execPath, [CLI, 'start', fixture('hello.js'), '-i', '1', '--name', 'linked', '--log-file', path, ...daemon], { reject: false, env, timeout: 20_000 });
    t.is(run.exitCode, ExitCode.USAGE, String(run.stderr));
    t.regex(String(run.stderr), /^clusterd: --log-file: cannot open .*app\.log: it is a symbolic link; refusing to follow it/);
    t.is(String(run.stderr).split('\n').length, 1, String(run.stderr));
  }
  t.is(readFileSync(victim, 'utf8'), 'secret\n');
});
