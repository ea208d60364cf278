// The operations of the Control service (Reload, Restart, Scale, Stop, Stack) against fake
// ControlOperations: real gRPC over real unix and TCP sockets, every error mapped both ways.
import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import { once } from 'node:events';
import { ControlClient } from '../../src/control/client.js';
import { MAX_LAST_OUTPUT_BYTES } from '../../src/control/status-codes.js';
import type { ProgressView } from '../../src/control/types.js';
import { BootError, ClusterdError } from '../../src/errors.js';
import { ExitCode } from '../../src/exit-codes.js';
import type { StopOutcome } from '../../src/master/status.js';
import { waitFor } from '../helpers/cluster.js';
import { SPIN_STACK } from './helpers/fake-operations.js';
import { serveOps } from './helpers/serve.js';

test('Reload streams every step, then resolves with the new generation', async (t) => {
  const { client, ops, server } = await serveOps(t);
  const steps: ProgressView[] = [];
  const done = await client.reload({ parallel: 2 }, (progress) => steps.push(progress));
  t.deepEqual(ops.calls, ['reload 2']);
  t.deepEqual(steps.map((step) => `${step.id} ${step.phase} ${step.pid}`), [
    '1 starting 50001',
    '1 draining 40001',
    '1 replaced 50001',
    '2 starting 50002',
    '2 draining 40002',
    '2 replaced 50002',
  ]);
  t.is(steps[0]!.message, 'worker 1: starting generation 2 (pid 50001)');
  t.like(done, { phase: 'done', generation: 2, replaced: 2, message: 'reloaded 2 workers: generation 2' });
  await waitFor(() => server.streams === 0, { what: 'the stream to be released' });
  t.pass();
});

test('Reload with parallel 0 (unset) asks for one at a time', async (t) => {
  const { client, ops } = await serveOps(t);
  await client.reload({ parallel: 0 }, () => {});
  t.deepEqual(ops.calls, ['reload 1']);
});

test('a replacement that fails to boot: FAILED_PRECONDITION, a BootError with its last output', async (t) => {
  const { client, ops } = await serveOps(t);
  ops.reload = async (_options, onProgress) => {
    onProgress({ id: 1, phase: 'starting', pid: 50_001, generation: 2, message: 'worker 1: starting generation 2 (pid 50001)' });
    onProgress({ id: 1, phase: 'failed', pid: 0, generation: 2, message: 'worker 1\'s replacement exited with code 1 before it was ready: Error: boom' });
    throw new BootError('reload failed after 0 of 2 workers: worker 1\'s replacement exited with code 1 before it was ready: Error: boom', [
      'file:///srv/app.js:1',
      'Error: boom',
      '    at file:///srv/app.js:1:7 — ünïcode',
    ]);
  };
  const steps: string[] = [];
  const error = await t.throwsAsync(client.reload({}, (progress) => steps.push(progress.phase)), { instanceOf: BootError });
  t.deepEqual(steps, ['starting', 'failed']);
  t.is(error.code, 'ERR_CLUSTERD_BOOT');
  t.is(error.exitCode, ExitCode.BOOT_FAILED);
  t.is(error.message, 'reload failed after 0 of 2 workers: worker 1\'s replacement exited with code 1 before it was ready: Error: boom');
  t.deepEqual(error.lastOutput, ['file:///srv/app.js:1', 'Error: boom', '    at file:///srv/app.js:1:7 — ünïcode']);
});

test('a failed worker\'s output is bounded: the latest lines that fit are kept', async (t) => {
  const { client, ops } = await serveOps(t);
  const lines = Array.from({ length: 200 }, (_, i) => `${i} ${'x'.repeat(300)}`);
  ops.restart = async () => {
    throw new BootError('worker 1\'s replacement exited', lines);
  };
  const error = await t.throwsAsync(client.restart(1, () => {}), { instanceOf: BootError });
  t.true(error.lastOutput.length > 10 && error.lastOutput.length < 200, `${error.lastOutput.length} lines`);
  t.deepEqual(error.lastOutput, lines.slice(-error.lastOutput.length));
  t.true(Buffer.byteLength(JSON.stringify(error.lastOutput)) <= MAX_LAST_OUTPUT_BYTES);
});

test('a reload while one runs is refused: ABORTED, exit code BUSY, the message as the master wrote it', async (t) => {
  const { client, ops } = await serveOps(t);
  const message = 'refused: a reload is in progress (started 3s ago); try again when it finishes';
  ops.reload = async () => {
    throw new ClusterdError('ERR_CLUSTERD_BUSY', message);
  };
  const error = await t.throwsAsync(client.reload({}, () => t.fail('no step of a refused reload')), { instanceOf: ClusterdError });
  t.is(error.code, 'ERR_CLUSTERD_BUSY');
  t.is(error.exitCode, ExitCode.BUSY);
  t.is(error.message, message);
});

test('Restart: steps then the new pid; an unknown id is NOT_FOUND naming the ids; id 0 is a usage error', async (t) => {
  const { client, ops } = await serveOps(t);
  const phases: string[] = [];
  const done = await client.restart(2, (progress) => phases.push(progress.phase));
  t.deepEqual(phases, ['starting', 'draining', 'replaced']);
  t.like(done, { phase: 'done', id: 2, pid: 50_002, generation: 1, message: 'worker 2 restarted: now pid 50002' });

  const unknown = await t.throwsAsync(client.restart(9, () => {}), { instanceOf: ClusterdError });
  t.is(unknown.code, 'ERR_CLUSTERD_NO_WORKER');
  t.is(unknown.exitCode, ExitCode.NOT_FOUND);
  t.is(unknown.message, 'no worker 9 in cluster api (workers: 1, 2)');

  const zero = await t.throwsAsync(client.restart(0, () => {}), { instanceOf: ClusterdError });
  t.is(zero.exitCode, ExitCode.USAGE);
  t.deepEqual(ops.calls, ['restart 2', 'restart 9']);
});

test('Scale: N, +K, -K; a bad spec or fewer than one worker is INVALID_ARGUMENT and changes nothing', async (t) => {
  const { client, ops, source } = await serveOps(t);
  t.deepEqual(await client.scale('+2'), { workers: 4, killed: [] });
  t.deepEqual(await client.scale('-1'), { workers: 3, killed: [] });
  t.deepEqual(await client.scale('1'), { workers: 1, killed: [] });
  for (const [spec, message] of [
    ['0', 'cannot scale api to 0 workers: at least one worker must run (now 1)'],
    ['-1', 'cannot scale api to 0 workers: at least one worker must run (now 1)'],
    ['many', 'Expected a worker count N, +K or -K, got `many`'],
  ] as const) {
    const error = await t.throwsAsync(client.scale(spec), { instanceOf: ClusterdError });
    t.is(error.exitCode, ExitCode.USAGE, spec);
    t.is(error.code, 'ERR_CLUSTERD_USAGE');
    t.is(error.message, message);
  }
  t.is(source.current.workers.length, 1);
  t.is(ops.calls.length, 6);
});

test('Stop: answers with the master pid and its grace, once per call', async (t) => {
  const { client, ops } = await serveOps(t);
  ops.graceMs = 2_500;
  t.deepEqual(await client.stop(), { masterPid: 39_999, graceMs: 2_500, outcome: null });
  t.deepEqual(ops.calls, ['stop']);
});

test('Status says the master\'s --grace up front (stop_terms), for a Stop\'s deadline; a master older than the field sends none: null', async (t) => {
  const { client, ops, source } = await serveOps(t);
  ops.graceMs = 0;
  t.deepEqual((await client.status()).stopTerms, { graceMs: 0 }, '--grace 0 is said, not taken for absent');
  source.update({ ...source.current, stopTerms: null });
  t.is((await client.status()).stopTerms, null);
});

test('Stop waiting for the outcome: answers once the stop has ended, with the workers killed rather than drained', async (t) => {
  const { client, ops } = await serveOps(t);
  let end!: (outcome: StopOutcome) => void;
  ops.stopOutcome = new Promise((resolve) => (end = resolve));
  let answered = false;
  const outcome = client.stop({ waitForOutcome: true, timeoutMs: 10_000 }).finally(() => (answered = true));
  await waitFor(() => ops.calls.length === 1, { what: 'the stop asked' });
  t.false(answered);
  const killed = { id: 1, pid: 40_001, message: 'worker 1 (pid 40001): --grace 1s over: killed (SIGKILL), destroying 3 HTTP requests in flight' };
  end({ exitCode: ExitCode.GRACE_EXPIRED, killed: [killed] });
  t.deepEqual(await outcome, { masterPid: 39_999, graceMs: 1_000, outcome: { exitCode: ExitCode.GRACE_EXPIRED, killed: [killed] } });
  t.deepEqual(ops.calls, ['stop']);
});

test('Stack: state and frames; unknown worker NOT_FOUND; no capture UNIMPLEMENTED; a timeout DEADLINE_EXCEEDED', async (t) => {
  const { client, ops } = await serveOps(t);
  t.deepEqual(await client.stack(2), { state: 'idle', frames: [] });
  ops.stacks.set(1, SPIN_STACK);
  t.deepEqual(await client.stack(1), { state: 'blocked', frames: SPIN_STACK.stack });

  const unknown = await t.throwsAsync(client.stack(5), { instanceOf: ClusterdError });
  t.is(unknown.exitCode, ExitCode.NOT_FOUND);
  t.is(unknown.message, 'no worker 5 in cluster api (workers: 1, 2)');

  ops.stack = async () => {
    throw new ClusterdError('ERR_CLUSTERD_UNAVAILABLE', 'stack capture is not available in this build');
  };
  const unavailable = await t.throwsAsync(client.stack(1), { instanceOf: ClusterdError });
  t.is(unavailable.code, 'ERR_CLUSTERD_UNAVAILABLE');
  t.is(unavailable.message, 'stack capture is not available in this build');

  ops.stack = async () => {
    throw new ClusterdError('ERR_CLUSTERD_INSPECTOR', "worker 1's main thread did not reach JavaScript within 1000 ms");
  };
  const late = await t.throwsAsync(client.stack(1), { instanceOf: ClusterdError });
  t.is(late.code, 'ERR_CLUSTERD_INSPECTOR');
  t.is(late.exitCode, ExitCode.INTERNAL);
});

test('a bug in an operation is INTERNAL, thrown or rejected, and the master serves on', async (t) => {
  const { client, ops } = await serveOps(t);
  ops.scale = () => {
    throw new TypeError('cannot read properties of undefined');
  };
  ops.restart = () => Promise.reject(new Error('kaput'));
  const thrown = await t.throwsAsync(client.scale('2'), { instanceOf: ClusterdError });
  t.regex(thrown.message, /cannot read properties of undefined/);
  const rejected = await t.throwsAsync(client.restart(1, () => {}), { instanceOf: ClusterdError });
  t.regex(rejected.message, /kaput/);
  t.is((await client.status()).name, 'api');
});

test('cancelling a Reload stops the stream, not the reload', async (t) => {
  const { server, ops } = await serveOps(t);
  let release: () => void = () => {};
  let finished = false;
  ops.reload = async (_options, onProgress) => {
    onProgress({ id: 1, phase: 'starting', pid: 50_001, generation: 2, message: 'worker 1: starting' });
    await new Promise<void>((resolve) => (release = resolve));
    onProgress({ id: 1, phase: 'replaced', pid: 50_001, generation: 2, message: 'worker 1: replaced' });
    finished = true;
    return { generation: 2, replaced: 1 };
  };
  // A client that goes away mid-reload, as a Ctrl-C'd CLI does. (An empty message is a
  // ReloadRequest with every field unset.)
  const raw = new grpc.Client(`unix:${server.socketPath}`, grpc.credentials.createInsecure());
  t.teardown(() => raw.close());
  const call = raw.makeServerStreamRequest('/clusterd.v1.Control/Reload', (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0));
  call.on('error', () => {});
  await once(call, 'data');
  t.is(server.streams, 1);
  call.cancel();
  await waitFor(() => server.streams === 0, { what: 'the cancelled stream to be released' });
  release();
  await waitFor(() => finished, { what: 'the reload to finish on its own' });
  t.pass();
});

test('close() ends a running operation\'s stream with UNAVAILABLE', async (t) => {
  const { server, client, ops } = await serveOps(t);
  ops.reload = (_options, onProgress) => {
    onProgress({ id: 1, phase: 'starting', pid: 1, generation: 2, message: 'worker 1: starting' });
    return new Promise(() => {});
  };
  const outcome = client.reload({}, () => void server.close());
  const error = await t.throwsAsync(outcome, { instanceOf: ClusterdError });
  t.regex(error.message, /stopping/);
  t.is(server.streams, 0);
});

test('without operations, every new method answers UNIMPLEMENTED and Status still works', async (t) => {
  const { client } = await serveOps(t, { operations: false });
  for (const call of [
    () => client.reload({}, () => {}),
    () => client.restart(1, () => {}),
    () => client.scale('2'),
    () => client.stop(),
    () => client.stack(1),
    () => new Promise((resolve, reject) => client.logs({ lines: 10 }, { onEntry: resolve, onEnd: (error) => (error ? reject(error) : resolve(null)) })),
  ]) {
    const error = await t.throwsAsync(call(), { instanceOf: ClusterdError });
    t.is(error.code, 'ERR_CLUSTERD_UNIMPLEMENTED');
    t.regex(error.message, /does not offer (Reload|Restart|Scale|Stop|Stack|Logs)/);
  }
  t.is((await client.status()).workers.length, 2);
  t.is((await client.status()).workers[0]!.lastBlocked, null);
});

test('TCP: every operation needs the token', async (t) => {
  const token = 'tok3n';
  const { server, ops } = await serveOps(t, { tcp: { host: '127.0.0.1', port: 0, token } });
  const { port } = server.tcpAddress!;
  const wrong = new ControlClient({ transport: 'tcp', host: '127.0.0.1', port, token: 'nope' });
  t.teardown(() => wrong.close());
  for (const call of [
    () => wrong.reload({}, () => {}),
    () => wrong.restart(1, () => {}),
    () => wrong.scale('3'),
    () => wrong.stop(),
    () => wrong.stack(1),
    () => new Promise((resolve, reject) => wrong.logs({ lines: 10 }, { onEntry: resolve, onEnd: (error) => (error ? reject(error) : resolve(null)) })),
  ]) {
    const error = await t.throwsAsync(call(), { instanceOf: ClusterdError });
    t.is(error.exitCode, ExitCode.UNAUTHENTICATED);
  }
  t.deepEqual(ops.calls, [], 'no operation ran without the token');

  const right = new ControlClient({ transport: 'tcp', host: '127.0.0.1', port, token });
  t.teardown(() => right.close());
  t.is((await right.scale('3')).workers, 3);
  t.like(await right.reload({}, () => {}), { phase: 'done', replaced: 3 });
});
