// Pipelined HTTP/1.1 requests (sent in one write, before any answer is read) across the events that
// end connections with `Connection: close`: a drain (reload) and fair's rebalancing (scale-up).
import test from 'ava';
import net from 'node:net';
import { fixture, startCluster, waitFor } from '../helpers/cluster.js';
import { control } from '../helpers/control.js';


interface Pipeliner {
  /** Requests sent, and those that got no answer (their connection closed first). */
  counts(): { sent: number; answered: number; lost: number; closes: number };
  stop(): Promise<void>;
}

/**
 * `connections` clients, each writing `batch` GETs in one write and waiting for as many answers (status
 * lines counted) before the next batch; a connection the server closes is reopened, and the
 * requests of its batch still unanswered are counted lost.
 */
function pipeliner(port: number, connections: number, { path = '/', batch = 10 } = {}): Pipeliner {
  let running = true;
  let sent = 0;
  let answered = 0;
  let lost = 0;
  let closes = 0;
  const requests = `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`.repeat(batch);
  const client = async (): Promise<void> => {
    while (running) {
      await new Promise<void>((resolve) => {
        const socket = net.connect(port, '127.0.0.1');
        let seen = 0;
        let written = false;
        let closing = false;
        let text = '';
        const next = (): void => {
          if (!running) {
            socket.end();
            return;
          }
          seen = 0;
          written = true;
          sent += batch;
          socket.write(requests);
        };
        socket.setEncoding('latin1');
        socket.on('connect', next);
        socket.on('data', (chunk: string) => {
          text += chunk;
          // Each response is its head and the body `ok` (content-length 2).
          for (let end = text.indexOf('\r\n\r\n'); end !== -1 && text.length >= end + 6; end = text.indexOf('\r\n\r\n')) {
            if (/\r\nconnection: close\r\n/i.test(text.slice(0, end + 2))) closing = true;
            text = text.slice(end + 6);
            seen++;
            answered++;
          }
          if (seen === batch && closing) closes++;
          else if (seen === batch) next();
        });
        socket.on('error', () => {});
        socket.on('close', () => {
          if (written && seen < batch) lost += batch - seen;
          resolve();
        });
      });
    }
  };
  const clients = Array.from({ length: connections }, client);
  return {
    counts: () => ({ sent, answered, lost, closes }),
    async stop() {
      running = false;
      await Promise.all(clients);
    },
  };
}

test('pipelined requests are all answered across a reload (the connection ends after the last one read, not after the first)', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('pipelined.js'), { instances: 2, flags: ['--name', 'piped'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  const clients = pipeliner(cluster.port, 8);
  t.teardown(() => clients.stop());
  await waitFor(() => clients.counts().answered >= 200, { what: 'pipelined traffic flowing' });
  const reload = await ctl.run(['reload', 'piped']);
  t.is(reload.exitCode, 0, String(reload.stderr));
  // Traffic goes on on the new workers.
  const after = clients.counts().answered;
  await waitFor(() => clients.counts().answered >= after + 200, { what: 'pipelined traffic on the new workers' });
  await clients.stop();
  const counts = clients.counts();
  t.log(counts);
  // The drain ended connections (their last answer said close) and lost none of their requests.
  t.is(counts.lost, 0);
  t.true(counts.closes >= 8, `${counts.closes} connections ended by the drain`);
  t.is(counts.answered, counts.sent);
});

/** Until the cluster `name` scaled to 3 has its new worker holding a share (3 or more) of the connections. */
async function untilThreeHoldShares(ctl: ReturnType<typeof control>, name: string): Promise<void> {
  await waitFor(
    async () => {
      const workers = await ctl.workers(name);
      return workers.length === 3 && Math.min(...workers.map((worker) => worker.connections ?? 0)) >= 3;
    },
    { timeoutMs: 20_000, intervalMs: 100, what: 'the new worker holding its share of the connections' },
  );
}

test('fair: pipelined requests are all answered when a scale-up moves connections (2 to 3)', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('pipelined.js'), { instances: 2, flags: ['--name', 'pipedfair', '--balance', 'fair'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  const clients = pipeliner(cluster.port, 16);
  t.teardown(() => clients.stop());
  await waitFor(() => clients.counts().answered >= 200, { what: 'pipelined traffic flowing' });
  const scaled = await ctl.run(['scale', 'pipedfair', '3']);
  t.is(scaled.exitCode, 0, String(scaled.stderr));
  // The new worker, far below an even share, makes the others end connections down to it.
  await untilThreeHoldShares(ctl, 'pipedfair');
  await clients.stop();
  const counts = clients.counts();
  t.log(counts);
  t.is(counts.lost, 0);
  t.true(counts.closes >= 3, `${counts.closes} connections moved`);
  t.is(counts.answered, counts.sent);
});

test('fair: a scale-up ends no connection whose client pipelines to an app that answers inside the parser (it would drop the requests read behind the close)', async (t) => {
  const ctl = control(t);
  const cluster = await startCluster(fixture('pipelined.js'), { instances: 2, flags: ['--name', 'pipedsync', '--balance', 'fair'], env: ctl.env });
  t.teardown(() => cluster.stop('SIGKILL'));
  const pipelining = pipeliner(cluster.port, 16, { path: '/sync' });
  t.teardown(() => pipelining.stop());
  await waitFor(() => pipelining.counts().answered >= 200, { what: 'pipelined traffic flowing' });
  // Keep-alive clients that send one request at a time: those are the ones moved.
  const single = pipeliner(cluster.port, 16, { path: '/sync', batch: 1 });
  t.teardown(() => single.stop());
  await waitFor(() => single.counts().answered >= 200, { what: 'keep-alive traffic flowing' });
  const scaled = await ctl.run(['scale', 'pipedsync', '3']);
  t.is(scaled.exitCode, 0, String(scaled.stderr));
  await untilThreeHoldShares(ctl, 'pipedsync');
  await Promise.all([pipelining.stop(), single.stop()]);
  t.log({ pipelining: pipelining.counts(), single: single.counts() });
  t.is(pipelining.counts().lost, 0);
  t.is(single.counts().lost, 0);
  t.true(single.counts().closes >= 3, `${single.counts().closes} connections moved`);
});
