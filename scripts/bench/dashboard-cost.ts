// `npm run bench:dashboard`: what connected dashboards cost the master. Starts a cluster of the
// benchmark's app (-i 4) without --dashboard, then one with it, and with 0, 1, 10
// and 50 pages following /events (plain HTTP readers: the browser's own cost is not the master's),
// reads the master's CPU time from /proc over --seconds each (default 20), and prints a Markdown table:
// the master's CPU (% of one core), and the bytes each page receives per second. Last, where Debian's
// chromium is installed, one real page (headless, playwright-core): its main thread's busy time
// (CDP Performance.getMetrics TaskDuration) as a % of one core. Linux only (/proc).
//   --seconds N           how long each step is measured
//   --stats-interval D    the cluster's --stats-interval, which is also the pages' update rate (default 1s)
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as pause } from 'node:timers/promises';
import { chromium } from 'playwright-core';

const root = path.resolve(import.meta.dirname, '..', '..');
const clusterd = path.join(root, 'bin', 'clusterd.js');
const app = path.join(root, 'scripts', 'bench', 'apps', 'server.cjs');
const PAGES = [0, 1, 10, 50];
/** Linux's USER_HZ: /proc/PID/stat counts CPU time in these. */
const TICKS_PER_SECOND = 100;
const CHROMIUM = '/usr/bin/chromium';

/** The master's user + system CPU time so far, in seconds. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces, inside parentheses): utime is the 14th field.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

async function startMaster(statsInterval: string, flags: string[]): Promise<{ child: ChildProcess; ready: Record<string, unknown> }> {
  const child = spawn(process.execPath, [clusterd, 'start', app, '-i', '4', '--stats-interval', statsInterval, '--log-format', 'json', ...flags], {
    env: { ...process.env, BENCH_PORT: '0', CLUSTERD_RUNTIME_DIR: path.join(root, '.bench-cache', 'dashboard-run') },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  for await (const line of lines) {
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(line) as Record<string, unknown>;
    } catch {
      continue;
    }
    if (parsed.event === 'ready') {
      lines.on('line', () => {});
      return { child, ready: parsed };
    }
  }
  throw new Error('the cluster exited before it was ready');
}

async function stop(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

/** Opens `count` readers of /events; each counts the bytes it gets. */
function follow(url: string, count: number): { bytes: () => number; close: () => void } {
  let bytes = 0;
  const requests = Array.from({ length: count }, () =>
    http.get(new URL('events', url), { agent: false }, (response) => response.on('data', (chunk: Buffer) => (bytes += chunk.length))),
  );
  for (const request of requests) request.on('error', () => {});
  return { bytes: () => bytes, close: () => requests.forEach((request) => request.destroy()) };
}

async function measure(pid: number, seconds: number): Promise<number> {
  const before = cpuSeconds(pid);
  await pause(seconds * 1000);
  return ((cpuSeconds(pid) - before) / seconds) * 100;
}

async function main(argv: string[]): Promise<number> {
  let seconds = 20;
  let statsInterval = '1s';
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--seconds' && Number(argv[i + 1]) > 0) seconds = Number(argv[++i]);
    else if (argv[i] === '--stats-interval' && argv[i + 1]) statsInterval = argv[++i]!;
    else {
      console.error(`bench:dashboard: unknown argument ${argv[i]} (usage: npm run bench:dashboard -- [--seconds N] [--stats-interval D])`);
      return 2;
    }
  }
  const rows: string[] = ['| master | pages on /events | master CPU (% of a core) | bytes per page per second |', '|---|---:|---:|---:|'];
  let pageRow = '';
  {
    const { child } = await startMaster(statsInterval, []);
    await pause(2000);
    rows.push(`| without --dashboard | - | ${(await measure(child.pid!, seconds)).toFixed(2)} | - |`);
    await stop(child);
  }
  const { child, ready } = await startMaster(statsInterval, ['--dashboard', '127.0.0.1:0']);
  const url = ready.dashboard as string;
  for (const pages of PAGES) {
    const readers = follow(url, pages);
    // The snapshots go out first: count the steady state only.
    await pause(2000);
    const bytesBefore = readers.bytes();
    const cpu = await measure(child.pid!, seconds);
    const perPage = pages === 0 ? '-' : ((readers.bytes() - bytesBefore) / seconds / pages).toFixed(0);
    rows.push(`| --dashboard | ${pages} | ${cpu.toFixed(2)} | ${perPage} |`);
    readers.close();
  }
  if (existsSync(CHROMIUM)) {
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    const page = await browser.newPage();
    await page.goto(url);
    await pause(2000);
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Performance.enable');
    const busy = async (): Promise<number> => (await cdp.send('Performance.getMetrics')).metrics.find((metric) => metric.name === 'TaskDuration')?.value ?? 0;
    const before = await busy();
    const master = await measure(child.pid!, seconds);
    const pageCpu = ((await busy()) - before) / seconds * 100;
    pageRow = `\nOne page in headless chromium: its main thread busy ${pageCpu.toFixed(2)} % of a core; the master ${master.toFixed(2)} %.`;
    await browser.close();
  }
  await stop(child);
  console.log(rows.join('\n') + pageRow);
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
