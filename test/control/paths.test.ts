// Issue 11: the runtime directory. clusterd changes the mode of no directory it did not create: a
// shared one (sticky like /tmp, or open to reading) gets a private subdirectory clusterd-<uid>; one
// where others could rename what clusterd puts there is refused with one line.
import test from 'ava';
import { execa } from 'execa';
import { chmodSync, chownSync, existsSync, mkdirSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { checkRuntimeDirToRead, ensureRuntimeDir, runtimeDir, unsafeToRead } from '../../src/control/paths.js';
import { startControlServer } from '../../src/control/server.js';
import { ClusterdError } from '../../src/errors.js';
import { CLI, fixture, killOnTeardown, startCluster } from '../helpers/cluster.js';
import { tempDir } from './helpers/dirs.js';
import { FakeSource, twoWorkers } from './helpers/fake-source.js';

const uid = process.getuid!();
const mode = (path: string): number => statSync(path).mode & 0o7777;

/** A directory of `perm` inside the test's own; chmod after mkdir, which the umask would cut. */
function dirWithMode(t: Parameters<typeof tempDir>[0], perm: number): string {
  const dir = join(tempDir(t), 'shared');
  mkdirSync(dir);
  chmodSync(dir, perm);
  return dir;
}

async function serveIn(t: Parameters<typeof tempDir>[0], dir: string) {
  const server = await startControlServer({ name: 'fake', source: new FakeSource(twoWorkers('fake')), dir });
  t.teardown(() => server.close());
  return server;
}

test('a sticky shared directory (1777) keeps its mode; clusterd uses a private subdirectory in it', async (t) => {
  const shared = dirWithMode(t, 0o1777);
  const dir = runtimeDir({ CLUSTERD_RUNTIME_DIR: shared });
  t.is(dir, join(shared, `clusterd-${uid}`));
  t.is(ensureRuntimeDir(dir), dir);
  const server = await serveIn(t, dir);
  t.is(server.socketPath, join(dir, 'fake.sock'));
  t.is(mode(shared), 0o1777);
  t.is(mode(dir), 0o700);
  t.is(statSync(dir).uid, uid);
  t.is(mode(server.socketPath), 0o600);
  // Clients resolve the same place once the subdirectory exists.
  t.is(runtimeDir({ CLUSTERD_RUNTIME_DIR: shared }), dir);
});

test('a private existing directory is used as it is', async (t) => {
  const dir = dirWithMode(t, 0o700);
  t.is(runtimeDir({ CLUSTERD_RUNTIME_DIR: dir }), dir);
  const server = await serveIn(t, ensureRuntimeDir(dir));
  t.is(server.socketPath, join(dir, 'fake.sock'));
  t.is(mode(dir), 0o700);
  t.is(mode(server.socketPath), 0o600);
});

test('a directory others may only read (0755) keeps its mode; clusterd uses a private subdirectory in it', (t) => {
  const readable = dirWithMode(t, 0o755);
  const dir = runtimeDir({ CLUSTERD_RUNTIME_DIR: readable });
  t.is(dir, join(readable, `clusterd-${uid}`));
  ensureRuntimeDir(dir);
  t.is(mode(readable), 0o755);
  t.is(mode(dir), 0o700);
});

/** Refused with one line naming the directory; its mode untouched. */
const refused = test.macro({
  exec(t, perm: number, owner: number, message: RegExp) {
    const shared = dirWithMode(t, perm);
    chownSync(shared, owner, owner);
    const dir = runtimeDir({ CLUSTERD_RUNTIME_DIR: shared });
    t.is(dir, shared, 'no subdirectory where others could rename it');
    const error = t.throws(() => ensureRuntimeDir(dir), { instanceOf: ClusterdError });
    t.is(error.code, 'ERR_CLUSTERD_RUNTIME_DIR');
    t.regex(error.message, message);
    t.true(error.message.includes(shared));
    t.false(error.message.includes('\n'));
    // The client, before it reads the directory and connects to a socket in it, refuses it alike.
    const read = t.throws(() => checkRuntimeDirToRead(dir), { instanceOf: ClusterdError });
    t.is(read.code, 'ERR_CLUSTERD_RUNTIME_DIR');
    t.true(read.message.startsWith(error.message.split(' and clusterd changes')[0]!), read.message);
    t.is(mode(shared), perm);
  },
  title: (_title, perm: number, owner: number) => `a directory of mode ${perm.toString(8).padStart(4, '0')} owned by uid ${owner} is refused and left as it is`,
});
test(refused, 0o777, uid, /is open to other users \(mode 0777\).*chmod 700/);
test(refused, 0o770, uid, /is open to other users \(mode 0770\)/);
// Another user's sticky directory: its owner may still remove what is in it.
if (uid === 0) test(refused, 0o1777, 65534, /belongs to uid 65534/);

test('the client reads a private directory, takes a missing one for no cluster (creating nothing), and refuses a symbolic link', (t) => {
  const parent = tempDir(t);
  t.true(checkRuntimeDirToRead(parent));
  t.false(checkRuntimeDirToRead(join(parent, 'missing')));
  t.false(existsSync(join(parent, 'missing')));
  symlinkSync(parent, join(parent, 'link'));
  t.throws(() => checkRuntimeDirToRead(join(parent, 'link')), { instanceOf: ClusterdError, message: /is a symbolic link; refusing to follow it, so clusterd trusts no control socket in it/ });
});

test('root trusts another user\'s private directory only where CLUSTERD_RUNTIME_DIR names it, never at its own default path', (t) => {
  const dir = (owner: number, mode: number) => ({ uid: owner, mode: 0o40000 | mode, isDirectory: () => true, isSymbolicLink: () => false });
  // `sudo CLUSTERD_RUNTIME_DIR=/run/user/1000/clusterd clusterd stop api`: that user's clusters.
  t.is(unsafeToRead('/run/user/1000/clusterd', dir(1000, 0o700), { uid: 0, named: true }), null);
  // /tmp/clusterd-0 made by a user before root used it: a fake cluster would answer root.
  t.is(unsafeToRead('/tmp/clusterd-0', dir(1000, 0o700), { uid: 0, named: false }), 'the runtime directory /tmp/clusterd-0 belongs to uid 1000, not to this user (uid 0)');
  t.is(unsafeToRead('/tmp/clusterd-0', dir(0, 0o700), { uid: 0, named: false }), null);
  // Named or not, nobody else reads another user's directory, nor one open to others.
  t.regex(unsafeToRead('/x', dir(1000, 0o700), { uid: 1001, named: true }) ?? '', /belongs to uid 1000, not to this user \(uid 1001\)/);
  t.regex(unsafeToRead('/x', dir(1000, 0o770), { uid: 0, named: true }) ?? '', /belongs to uid 1000/);
  t.regex(unsafeToRead('/x', dir(1000, 0o755), { uid: 1000, named: false }) ?? '', /is open to other users \(mode 0755\)/);
});

// Root can make a directory of another user's to check the real one.
if (uid === 0) {
  test('root\'s control commands refuse their default runtime directory squatted by another user; named by CLUSTERD_RUNTIME_DIR it is read', (t) => {
    const squatted = join(tempDir(t), 'clusterd-0');
    mkdirSync(squatted, { mode: 0o700 });
    chownSync(squatted, 65534, 65534);
    t.throws(() => checkRuntimeDirToRead(squatted, {}), { instanceOf: ClusterdError, message: /belongs to uid 65534, not to this user \(uid 0\), so clusterd trusts no control socket in it/ });
    // A subdirectory clusterd picked in the named one is not named.
    t.throws(() => checkRuntimeDirToRead(squatted, { CLUSTERD_RUNTIME_DIR: join(squatted, '..') }), { instanceOf: ClusterdError });
    t.true(checkRuntimeDirToRead(squatted, { CLUSTERD_RUNTIME_DIR: squatted }));
  });
}

test('a directory passed as the runtime directory itself is never chmodded, even when it is ours', (t) => {
  const dir = dirWithMode(t, 0o755);
  const error = t.throws(() => ensureRuntimeDir(dir), { instanceOf: ClusterdError });
  t.regex(error.message, /is open to other users \(mode 0755\)/);
  t.is(mode(dir), 0o755);
});

test('a subdirectory someone else prepared in the shared directory is refused, not repaired', (t) => {
  const shared = dirWithMode(t, 0o1777);
  const planted = join(shared, `clusterd-${uid}`);
  mkdirSync(planted);
  chmodSync(planted, 0o777);
  t.is(runtimeDir({ CLUSTERD_RUNTIME_DIR: shared }), planted);
  t.throws(() => ensureRuntimeDir(planted), { instanceOf: ClusterdError, message: /is open to other users \(mode 0777\)/ });
  t.is(mode(planted), 0o777);
  t.is(mode(shared), 0o1777);
});

test('the CLI: a cluster started with CLUSTERD_RUNTIME_DIR=<a 1777 directory> is found by ls, and the directory keeps 1777', async (t) => {
  const shared = dirWithMode(t, 0o1777);
  const env = { CLUSTERD_RUNTIME_DIR: shared };
  const cluster = await startCluster(fixture('hello.js'), { instances: 1, flags: ['--name', 'sticky'], env });
  killOnTeardown(t, cluster.process);
  const ls = await execa(process.execPath, [CLI, 'ls', '--json'], { env, reject: false });
  t.is(ls.exitCode, 0, String(ls.stderr));
  t.deepEqual((JSON.parse(String(ls.stdout)) as { name: string }[]).map((cluster) => cluster.name), ['sticky']);
  t.is(mode(shared), 0o1777);
  t.is(mode(join(shared, `clusterd-${uid}`)), 0o700);
  t.is(await cluster.stop(), 0);
  t.is(mode(shared), 0o1777);
});

test('a relative CLUSTERD_RUNTIME_DIR is refused: each command run elsewhere would look in another directory', (t) => {
  const error = t.throws(() => runtimeDir({ CLUSTERD_RUNTIME_DIR: 'run/clusterd' }), { instanceOf: ClusterdError });
  t.is(error.code, 'ERR_CLUSTERD_RUNTIME_DIR');
  t.regex(error.message, /CLUSTERD_RUNTIME_DIR must be an absolute path, got `run\/clusterd`/);
});

test('missing parents are made one level at a time, each 0700; a directory that cannot be made is one error, not a spin', (t) => {
  const dir = join(tempDir(t), 'a', 'b', 'c');
  t.is(ensureRuntimeDir(dir), dir);
  for (const path of [dir, join(dir, '..'), join(dir, '..', '..')]) t.is(mode(path), 0o700);
  // Under /proc, Node's recursive mkdir retries for good (ENOENT with the parent there).
  const error = t.throws(() => ensureRuntimeDir('/proc/clusterd-test-runtime-dir/x'), { instanceOf: ClusterdError });
  t.regex(error.message, /cannot create the runtime directory \/proc\/clusterd-test-runtime-dir\/x: ENOENT/);
});

// Root may write anywhere: a user who may not write is made with setpriv, as the master would run.
const asNobody = uid === 0 && statSync('/usr/bin/setpriv', { throwIfNoEntry: false }) !== undefined ? test : test.skip;
asNobody('a runtime directory its owner may not write to: `start` and `start -d` say so in one line, exit 2', async (t) => {
  const dir = join(tempDir(t), 'rt');
  mkdirSync(dir);
  chownSync(dir, 65534, 65534);
  chmodSync(dir, 0o500);
  chmodSync(join(dir, '..'), 0o755);
  for (const extra of [[], ['-d']]) {
    const result = await execa('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, 'start', fixture('hello.js'), '-i', '1', '--name', 'unwritable', ...extra], {
      env: { CLUSTERD_RUNTIME_DIR: dir, PORT: '0' },
      reject: false,
      timeout: 30_000,
      stdin: 'ignore',
    });
    t.is(result.exitCode, 2, `${extra.join(' ')}: ${String(result.stderr)}`);
    t.regex(String(result.stderr), new RegExp(`^clusterd: the runtime directory ${dir} cannot be written \\(fix its permissions, or set CLUSTERD_RUNTIME_DIR to another directory\\): EACCES`));
    t.is(String(result.stderr).trim().split('\n').length, 1, String(result.stderr));
  }
});
