// A control plane on a fake source, with no master and no workers: for trying the CLI by hand.
//
//   CLUSTERD_RUNTIME_DIR=/tmp/cd-try node --import tsx test/control/helpers/fake-server.ts demo --workers 4 --live
//   CLUSTERD_RUNTIME_DIR=/tmp/cd-try node bin/clusterd.js top
//
// --live changes the samples every 250 ms; worker 1 then blocks its loop ~200 ms once a second,
// like the proof fixture. --control HOST:PORT --token T also serves TCP. Prints one JSON
// line {"socketPath","tcpAddress"} once listening; SIGINT or SIGTERM closes it.
import { parseArgs } from 'node:util';
import type { LoopSample } from '../../../src/loop/types.js';
import { parseControlAddress } from '../../../src/control/options.js';
import { startControlServer } from '../../../src/control/server.js';
import { FakeSource, clusterStatus, sample, worker } from './fake-source.js';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    workers: { type: 'string', default: '2' },
    live: { type: 'boolean', default: false },
    control: { type: 'string' },
    token: { type: 'string' },
  },
});
const name = positionals[0] ?? 'fake';
const count = Number(values.workers);
const started = Date.now();
const histories = new Map<number, LoopSample[]>(Array.from({ length: count }, (_, i) => [i + 1, [] as LoopSample[]]));

function tick(): void {
  const now = Date.now();
  for (const [id, history] of histories) {
    const blocked = id === 1 && Math.floor(now / 1000) % 2 === 0;
    const base = 0.5 + Math.random() * 2;
    history.push(
      sample({
        time: now,
        lag: blocked ? { mean: 60, p50: 1.2, p90: 190, p99: 205, max: 212 } : { mean: base, p50: base, p90: base * 1.4, p99: base * 2, max: base * 3 },
        elu: blocked ? 0.35 + Math.random() * 0.6 : 0.05 + Math.random() * 0.2,
        cpu: 5 + Math.random() * 30,
        http: { rps: 200 + Math.random() * 200, requests: 300, inflight: Math.floor(Math.random() * 4), connections: 10 + id },
      }),
    );
    if (history.length > 60) history.shift();
  }
  const status = clusterStatus(
    name,
    [...histories].map(([id, history]) => worker(id, { uptimeMs: now - started, startedAt: started }, [...history])),
  );
  source.update({ ...status, masterPid: process.pid, startedAt: started, uptimeMs: now - started });
}

const source = new FakeSource({ ...clusterStatus(name, [...histories.keys()].map((id) => worker(id))), masterPid: process.pid });
const tcp = values.control ? { ...parseControlAddress(values.control), token: values.token ?? '' } : undefined;
const server = await startControlServer({ name, source, tcp });
const timer = values.live ? setInterval(tick, 250) : null;
if (values.live) tick();
process.stdout.write(`${JSON.stringify({ socketPath: server.socketPath, tcpAddress: server.tcpAddress })}\n`);

const stop = (): void => {
  if (timer) clearInterval(timer);
  void server.close();
};
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
