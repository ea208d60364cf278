// Loaded with `--import` into every worker before the app's entry: routes listen() to the
// master, reports readiness, drains on shutdown, and exits with the master.
import * as channel from './channel.js';
import { installListenHook } from './listen.js';
import { drainServers, installServerTracking, listeningAddresses } from './servers.js';
import { SETTINGS_ENV, type WorkerSettings } from '../protocol.js';

function settings(): WorkerSettings {
  const raw = process.env[SETTINGS_ENV];
  delete process.env[SETTINGS_ENV];
  return raw ? (JSON.parse(raw) as WorkerSettings) : { waitReady: false, statsIntervalMs: 0 };
}

function start(): void {
  if (!process.send) {
    // Run outside a clusterd master (for example `node --import` by hand): do nothing.
    return;
  }
  const { waitReady } = settings();
  let readySent = false;
  const sendReady = (): void => {
    if (readySent) return;
    readySent = true;
    channel.send({ cmd: 'clusterd:ready', listening: listeningAddresses() });
  };

  installListenHook();
  installServerTracking(() => {
    if (!waitReady) sendReady();
  });
  // Under --wait-ready the app itself tells the master, PM2-style: process.send('ready').

  channel.on('clusterd:shutdown', () => {
    void drainServers().then(() => {
      channel.send({ cmd: 'clusterd:drained' });
      process.exit(0);
    });
  });

  // The master is gone (killed, even with SIGKILL): never outlive it, never hold its ports.
  process.on('disconnect', () => process.exit(0));
}

start();
