// The master's own resources on a running cluster: /metrics has the standard process_* series of the master
// process, `status --json` its RSS; a master older than the field decodes to none, without an error.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { controlService } from '../../src/control/proto.js';
import type { WireClusterStatus } from '../../src/control/proto.js';
import { decodeStatus, encodeStatus } from '../../src/control/convert.js';
import { statusJson } from '../../src/cli/views.js';
import { fixture, startCluster } from '../helpers/cluster.js';
import { control } from '../helpers/control.js';
import { scrape } from '../helpers/requests.js';
import { twoWorkers } from './helpers/fake-source.js';
import { validate } from './helpers/exposition.js';

const MiB = 1024 * 1024;

test('a running master reports its own process in /metrics and in status --json', async (t) => {
  const ctl = control(t);
  const name = 'master-usage';
  const before = Date.now() / 1000;
  const cluster = await startCluster(fixture('hello.js'), { instances: 2, flags: ['--name', name, '--metrics', '127.0.0.1:0'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  const url = cluster.lines.find((line) => line.event === 'ready')!.metrics as string;

  const text = await (await fetch(url)).text();
  const { by, problems } = validate(text);
  if (!by.includes('promtool')) t.log('promtool not installed (scripts/ci-deps.sh installs it): validated with the JS parser and the line lint only');
  t.deepEqual(problems, [], text);

  const metrics = await scrape(url);
  const figure = (series: string): number => {
    t.true(metrics.has(series), `${series} missing`);
    return metrics.get(series)!;
  };
  t.true(figure('process_resident_memory_bytes') > MiB);
  t.true(figure('process_cpu_seconds_total') > 0);
  // The master's start, not the scrape's nor a worker's: within the test, before its ready line.
  const started = figure('process_start_time_seconds');
  t.true(started >= before - 60 && started <= Date.now() / 1000, `start ${started}, test began ${before}`);
  t.true(figure('clusterd_master_memory_heap_used_bytes') > 0);
  t.true(figure('clusterd_master_memory_heap_total_bytes') >= figure('clusterd_master_memory_heap_used_bytes'));
  if (process.platform === 'linux') {
    // The master holds at least stdio, its listeners, the control socket and its workers' IPC channels.
    t.true(figure('process_open_fds') > 3);
    t.true(figure('process_max_fds') >= figure('process_open_fds'));
    t.true(figure('process_virtual_memory_bytes') > figure('process_resident_memory_bytes'));
    t.true(figure('process_heap_bytes') > 0);
    // The master's own figures, not the workers': its limit as /proc gives it from outside.
    const limit = /^Max open files\s+(\d+)/m.exec(readFileSync(`/proc/${cluster.masterPid}/limits`, 'utf8'))![1];
    t.is(figure('process_max_fds'), Number(limit));
  }

  const result = await ctl.run(['status', name, '--json']);
  t.is(result.exitCode, 0, String(result.stderr));
  const json = JSON.parse(String(result.stdout)) as { masterPid: number; master: { rss: number; heapUsed: number; heapTotal: number; cpuSeconds: number } | null; totals: { rss: number } };
  t.is(json.masterPid, cluster.masterPid);
  t.truthy(json.master);
  t.true(json.master!.rss > MiB);
  t.true(json.master!.heapUsed > 0 && json.master!.heapTotal >= json.master!.heapUsed);
  t.true(json.master!.cpuSeconds > 0);

  const plain = await ctl.run(['status', name]);
  // The workers' sum (`-` before their first sample), then the master's own, apart.
  t.regex(String(plain.stdout), / {2}(?:RSS \S+ [KMG]?i?B \+ master|master RSS) \d[\d.]* MiB {2}/);
  await cluster.stop();
});

test('over the wire, a master older than the field sends no `master`: the client reads null, no error', (t) => {
  const { responseSerialize, responseDeserialize } = controlService().definition.Status!;
  const roundTrip = (wire: WireClusterStatus): WireClusterStatus => responseDeserialize(responseSerialize(wire)) as WireClusterStatus;

  const current = decodeStatus(roundTrip(encodeStatus(twoWorkers('api'), { history: false })));
  t.deepEqual(current.master, { rss: 41 * MiB, heapUsed: 9 * MiB, heapTotal: 14 * MiB, cpuSeconds: 1.25 });

  const older = encodeStatus(twoWorkers('api'), { history: false });
  delete older.master;
  const decoded = decodeStatus(roundTrip(older));
  t.is(decoded.master, null);
  t.is(statusJson(decoded).master, null);
  t.is(decoded.totals.rss, 160 * MiB);
});
