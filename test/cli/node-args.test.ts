// --node-arg is repeatable: every flag reaches every worker's node, before clusterd's runtime.
import test from 'ava';
import { execa } from 'execa';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, fixture, isRunning, startCluster, waitFor } from '../helpers/cluster.js';
import { control } from '../helpers/control.js';
import { withoutInspectorFlags } from '../../src/system/node-options.js';
import { inspectorArgs } from '../../src/master/inspector.js';
import { freePort } from '../helpers/requests.js';

/** A port nothing listens on now: the system's pick, given back. */

/** Which of `pids` has a socket listening on 127.0.0.1:`port` (Linux's /proc), or null. */
function listenerPid(port: number, pids: number[]): number | null {
  const inodes = new Set<string>();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields[3] === '0A' && Number.parseInt(fields[1]?.split(':')[1] ?? '', 16) === port && fields[9]) inodes.add(fields[9]);
  }
  for (const pid of pids) {
    try {
      if (readdirSync(`/proc/${pid}/fd`).some((fd) => inodes.has(/^socket:\[(\d+)\]$/.exec(safeReadlink(`/proc/${pid}/fd/${fd}`))?.[1] ?? ''))) return pid;
    } catch {
      // Gone.
    }
  }
  return null;
}

function safeReadlink(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return '';
  }
}

test('repeated --node-arg flags all reach the workers', async (t) => {
  const cluster = await startCluster(fixture('prints-exec-argv.js'), {
    instances: 1,
    flags: ['--node-arg=--max-old-space-size=321', '--node-arg=--stack-size=900'],
  });
  t.teardown(() => cluster.stop('SIGKILL'));
  const line = await cluster.waitForLine((candidate) => candidate.worker === 1 && candidate.message.startsWith('execArgv '));
  const execArgv = JSON.parse(line.message.slice('execArgv '.length)) as string[];
  t.true(execArgv.includes('--max-old-space-size=321'), execArgv.join(' '));
  t.true(execArgv.includes('--stack-size=900'), execArgv.join(' '));
});

test('--node-arg=--inspect with two workers: each worker\'s inspector on a port of its own, and stack works on both', async (t) => {
  // A bare --inspect kept 127.0.0.1:9229 for every worker: the second logged "address already in use",
  // and `stack` of it said only that no inspector came up. NODE_OPTIONS=--inspect had a port each.
  const ctl = control(t);
  const cluster = await startCluster(fixture('hello.js'), { instances: 2, flags: ['--name', 'inspectargs', '--node-arg=--inspect'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  const address = (id: number) => cluster.waitForLine((line) => line.worker === id && /^Debugger listening on ws:\/\/127\.0\.0\.1:\d+\//.test(line.message));
  const ports = (await Promise.all([address(1), address(2)])).map((line) => new URL(/ws:\/\/\S+/.exec(line.message)![0]).port);
  t.not(ports[0], ports[1]);
  for (const id of ['1', '2']) {
    const stack = await ctl.run(['stack', 'inspectargs', id]);
    t.is(stack.exitCode, 0, String(stack.stderr));
  }
  t.false(cluster.lines.some((line) => /Starting inspector on .* failed/.test(line.message)), cluster.lines.map((line) => line.message).join('\n'));
});

test('NODE_OPTIONS=--inspect is for the workers: the master closes the inspector Node opened in it', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('hello.js'), { instances: 1, flags: ['--name', 'inspectenv'], env: { ...ctl.env, NODE_OPTIONS: '--inspect' } });
  t.teardown(() => cluster.stop('SIGKILL'));
  // Node opens it on 127.0.0.1:9229 before clusterd runs, unless that port is taken (another test's).
  const opened = cluster.stderr.some((line) => /^Debugger listening on ws:\/\/127\.0\.0\.1:9229\//.test(line));
  if (opened) t.true(cluster.stderr.some((line) => line.startsWith("clusterd: NODE_OPTIONS' --inspect is for the workers: clusterd start closed the inspector it opened at 127.0.0.1:9229")), cluster.stderr.join('\n'));
  else t.true(cluster.stderr.some((line) => /^Starting inspector on 127\.0\.0\.1:9229 failed/.test(line)), cluster.stderr.join('\n'));
  const stack = await ctl.run(['stack', 'inspectenv', '1']);
  t.is(stack.exitCode, 0, String(stack.stderr));
});

test('start -d with NODE_OPTIONS=--inspect: closed before the master starts, which opens none; the workers keep it', async (t) => {
  // The waiting `start -d` closed its inspector only after every worker was ready, and the master
  // it forked failed on the same port: "Starting inspector on ... failed: address already in use".
  const ctl = control(t);
  const port = await freePort();
  const started = execa(process.execPath, [CLI, 'start', fixture('wait-ready.js'), '-i', '1', '--wait-ready', '--name', 'inspectdaemon', '-d'], {
    env: { ...ctl.env, NODE_OPTIONS: `--inspect=127.0.0.1:${port} --max-old-space-size=300` },
    reject: false,
    timeout: 60_000,
  });
  t.teardown(async () => {
    await ctl.run(['stop', 'inspectdaemon']);
  });
  // The worker listens but is not ready (until SIGUSR2): `start -d` is still waiting for it.
  const worker = await waitFor(async () => (await ctl.run(['status', 'inspectdaemon', '--json'])).exitCode === 0 && (await ctl.workers('inspectdaemon'))[0], { timeoutMs: 30_000, what: 'the worker' });
  t.is(started.exitCode, null, 'start -d still waits');
  // The port NODE_OPTIONS names is the worker's (it holds), so start -d had closed its own on it.
  const holder = await waitFor(() => listenerPid(port, [started.pid!, worker.pid]), { timeoutMs: 10_000, what: `a listener on ${port}` });
  t.is(holder, worker.pid, `the worker, not start -d, listens on the inspector's port ${port} while start -d waits`);
  process.kill(worker.pid, 'SIGUSR2');
  const result = await started;
  t.is(result.exitCode, 0, String(result.stderr));
  t.true(String(result.stderr).includes(`clusterd: NODE_OPTIONS' --inspect is for the workers: clusterd start closed the inspector it opened at 127.0.0.1:${port}`), String(result.stderr));
  const log = readFileSync(/logs (\S+)$/m.exec(String(result.stdout))![1]!, 'utf8');
  // The master's own lines have no [wN] tag: none of them is the inspector's.
  t.false(/^(Starting inspector|Debugger listening)/m.test(log), log);
  t.false(log.includes('closed the inspector'), log);
  t.true(log.includes(`[w1] Debugger listening on ws://127.0.0.1:${port}/`), 'the worker has its inspector, as in the foreground, on the port given');
  const stack = await ctl.run(['stack', 'inspectdaemon', '1']);
  t.is(stack.exitCode, 0, String(stack.stderr));
  const { masterPid } = JSON.parse(String((await ctl.run(['status', 'inspectdaemon', '--json'])).stdout)) as { masterPid: number };
  const masterOptions = readFileSync(`/proc/${masterPid}/environ`, 'utf8').split('\0').find((entry) => entry.startsWith('NODE_OPTIONS='));
  t.is(masterOptions, 'NODE_OPTIONS=--max-old-space-size=300');
  const workerOptions = readFileSync(`/proc/${worker.pid}/environ`, 'utf8').split('\0').filter((entry) => /^(NODE_OPTIONS|CLUSTERD_WORKER_NODE_OPTIONS)=/.test(entry));
  t.deepEqual(workerOptions, [`NODE_OPTIONS=--inspect=127.0.0.1:${port} --max-old-space-size=300`]);
  await ctl.run(['stop', 'inspectdaemon']);
  await waitFor(() => !isRunning(masterPid), { timeoutMs: 15_000, what: 'the master to exit' });
});

test('NODE_OPTIONS=--inspect and a .mjs config: the process that loads the config opens no inspector', async (t) => {
  // It inherited NODE_OPTIONS: it opened the port `clusterd start` had just closed, or failed on it.
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-inspect-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'clusterd.config.mjs'), 'export default { instances: 1 };\n');
  const port = await freePort();
  const cluster = await startCluster(fixture('hello.js'), { instances: 1, flags: ['--name', 'inspectconfig', '--config', join(dir, 'clusterd.config.mjs')], env: { NODE_OPTIONS: `--inspect=127.0.0.1:${port}` } });
  t.teardown(() => cluster.stop('SIGKILL'));
  const inspectorLines = cluster.stderr.filter((line) => /^(Starting inspector|Debugger listening)/.test(line));
  t.deepEqual(inspectorLines.map((line) => line.replace(/\/[0-9a-f-]{36}$/, '')), [`Debugger listening on ws://127.0.0.1:${port}`], cluster.stderr.join('\n'));
});

test('NODE_OPTIONS=--inspect with a port: the worker listens on that port, as with --node-arg', async (t) => {
  // clusterd's --inspect-port=0 came after NODE_OPTIONS and replaced its port: the worker listened on one the system picked.
  const ctl = control(t);
  const port = await freePort();
  const cluster = await startCluster(fixture('hello.js'), { instances: 1, flags: ['--name', 'inspectenvport'], env: { ...ctl.env, NODE_OPTIONS: `--inspect=127.0.0.1:${port}` } });
  t.teardown(() => cluster.stop('SIGKILL'));
  const line = await cluster.waitForLine((candidate) => candidate.worker === 1 && /^(Debugger listening on|Starting inspector on)/.test(candidate.message));
  t.regex(line.message, new RegExp(`^Debugger listening on ws://127\\.0\\.0\\.1:${port}/`));
  const stack = await ctl.run(['stack', 'inspectenvport', '1']);
  t.is(stack.exitCode, 0, String(stack.stderr));
});

test('NODE_OPTIONS with --inspect-port and --inspect-publish-uid=http: the port holds, chrome://inspect still finds it, stack works', async (t) => {
  // clusterd's --inspect-publish-uid=stderr replaced the user's http: /json/list answered nothing.
  const ctl = control(t);
  const port = await freePort();
  const cluster = await startCluster(fixture('hello.js'), {
    instances: 1,
    flags: ['--name', 'inspectenvhttp'],
    env: { ...ctl.env, NODE_OPTIONS: `--inspect-port=${port} --inspect-publish-uid=http --inspect` },
  });
  t.teardown(() => cluster.stop('SIGKILL'));
  // The master reads the address on stderr: stderr is added to the user's http.
  const line = await cluster.waitForLine((candidate) => candidate.worker === 1 && /^(Debugger listening on|Starting inspector on)/.test(candidate.message));
  t.regex(line.message, new RegExp(`^Debugger listening on ws://127\\.0\\.0\\.1:${port}/`));
  const response = await fetch(`http://127.0.0.1:${port}/json/list`);
  const targets = (await response.json()) as { webSocketDebuggerUrl?: string }[];
  t.true(targets.some((target) => target.webSocketDebuggerUrl?.includes(`127.0.0.1:${port}/`)), JSON.stringify(targets));
  const stack = await ctl.run(['stack', 'inspectenvhttp', '1']);
  t.is(stack.exitCode, 0, String(stack.stderr));
});

const inspectorFlags = test.macro((t, nodeArgs: string[], nodeOptions: string, expected: string[]) => t.deepEqual(inspectorArgs(nodeArgs, nodeOptions), expected));
test('inspector flags: none of the user\'s', inspectorFlags, [], '', ['--inspect-port=0', '--inspect-publish-uid=stderr']);
test('inspector flags: a bare --inspect in NODE_OPTIONS gets a port each', inspectorFlags, [], '--inspect', ['--inspect-port=0', '--inspect-publish-uid=stderr']);
test('inspector flags: a port in NODE_OPTIONS holds', inspectorFlags, [], '--max-old-space-size=300 --inspect=9241', []);
test('inspector flags: --inspect-port in NODE_OPTIONS holds', inspectorFlags, [], '--inspect-port=9242 --inspect', []);
test('inspector flags: a port in --node-arg holds', inspectorFlags, ['--inspect-brk=127.0.0.1:9243'], '', []);
test('inspector flags: the user\'s publish-uid gets stderr added', inspectorFlags, [], '--inspect-publish-uid=http --inspect', ['--inspect-port=0', '--inspect-publish-uid=http,stderr']);
test('inspector flags: the last publish-uid is the one Node takes', inspectorFlags, ['--inspect-publish-uid=http'], '--inspect-publish-uid=stderr', ['--inspect-port=0', '--inspect-publish-uid=http,stderr']);
test('inspector flags: a publish-uid with stderr is left as it is', inspectorFlags, ['--inspect=9244', '--inspect-publish-uid=stderr,http'], '', []);

const stripped = test.macro((t, given: string, expected: string) => t.is(withoutInspectorFlags(given), expected));
test('NODE_OPTIONS less the flags that open an inspector: --inspect', stripped, '--inspect', '');
test('NODE_OPTIONS less the flags that open an inspector: with an address, among others', stripped, '--max-old-space-size=300 --inspect=127.0.0.1:9339 --require ./a.js', '--max-old-space-size=300 --require ./a.js');
test('NODE_OPTIONS less the flags that open an inspector: -brk and -wait', stripped, '--inspect-brk --inspect-wait=9230 --trace-warnings', '--trace-warnings');
test('NODE_OPTIONS less the flags that open an inspector: --inspect-port alone opens none', stripped, '--inspect-port=9230', '--inspect-port=9230');
test('NODE_OPTIONS less the flags that open an inspector: quoted words kept as written', stripped, '--require "./a b.js"  "--inspect"', '--require "./a b.js"');
test('NODE_OPTIONS less the flags that open an inspector: none there, unchanged', stripped, '  --require  ./a.js ', '  --require  ./a.js ');
