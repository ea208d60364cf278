// A deploy that moves a `current` symlink from one release to the next, then reloads: the new
// workers run the new release in its own directory. Started inside `current` (the shell's $PWD
// keeps the symlink) or with --cwd (systemd, which sets no $PWD), workers are forked with the path
// through the symlink, not the old release's real path.
import test, { type ExecutionContext } from 'ava';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCluster } from '../helpers/cluster.js';
import { control } from '../helpers/control.js';
import { getJson, type Answer } from '../helpers/requests.js';

interface ReleaseAnswer extends Answer {
  release: string;
  cwd: string;
}

/** releases/v1 and releases/v2, each an app that answers with the version.txt of its working directory; `current` -> v1. */
function releases(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-deploy-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const release of ['v1', 'v2']) {
    mkdirSync(join(dir, 'releases', release), { recursive: true });
    writeFileSync(join(dir, 'releases', release, 'version.txt'), release);
    writeFileSync(
      join(dir, 'releases', release, 'app.cjs'),
      `const http = require('node:http');
const release = require('node:fs').readFileSync('version.txt', 'utf8');
http.createServer((q, r) => r.end(JSON.stringify({ pid: process.pid, release, cwd: process.cwd() }))).listen(0, '127.0.0.1');
`,
    );
  }
  symlinkSync(join('releases', 'v1'), join(dir, 'current'));
  return dir;
}

/** Points `current` at `release` the way deploy tools do: a new link renamed over the old one. */
function switchTo(dir: string, release: string): void {
  symlinkSync(join('releases', release), join(dir, 'current.next'));
  renameSync(join(dir, 'current.next'), join(dir, 'current'));
}

const deploy = test.macro({
  async exec(t, how: 'pwd' | '--cwd') {
    const dir = releases(t);
    const ctl = control(t);
    const name = how === 'pwd' ? 'deploy-pwd' : 'deploy-cwd';
    const current = join(dir, 'current');
    const cluster = await startCluster('app.cjs', {
      flags: ['--name', name, ...(how === '--cwd' ? ['--cwd', current] : [])],
      ...(how === 'pwd' ? { cwd: current, env: { ...ctl.env, PWD: current } } : { cwd: tmpdir(), env: ctl.env }),
    });
    t.teardown(() => cluster.stop());
    const before = await getJson<ReleaseAnswer>(cluster.port);
    t.like(before, { release: 'v1', cwd: join(dir, 'releases', 'v1') });

    switchTo(dir, 'v2');
    const reload = await ctl.run(['reload', name]);
    t.is(reload.exitCode, 0, String(reload.stderr));
    for (let i = 0; i < 4; i++) t.like(await getJson<ReleaseAnswer>(cluster.port), { release: 'v2', cwd: join(dir, 'releases', 'v2') });
  },
  title: (_title, how: 'pwd' | '--cwd') => `a deploy's symlink swap, then reload: the new release runs in its own directory (${how === 'pwd' ? 'started inside current' : 'with --cwd current'})`,
});
test(deploy, 'pwd');
test(deploy, '--cwd');

test('a working directory deleted under the cluster: reload fails, naming it, and the old workers serve on', async (t) => {
  const dir = releases(t);
  const ctl = control(t);
  const release = join(dir, 'releases', 'v1');
  const cluster = await startCluster('app.cjs', { flags: ['--name', 'deploy-gone', '--cwd', release], cwd: tmpdir(), env: ctl.env });
  t.teardown(() => cluster.stop());
  const before = await getJson<ReleaseAnswer>(cluster.port);
  rmSync(release, { recursive: true, force: true });
  const reload = await ctl.run(['reload', 'deploy-gone']);
  t.is(reload.exitCode, 3, String(reload.stderr));
  t.true(String(reload.stderr).includes(`the working directory ${release} does not exist`), String(reload.stderr));
  t.true(cluster.pids.includes((await getJson<ReleaseAnswer>(cluster.port)).pid), 'an old worker answers');
  t.is(before.release, 'v1');
});
