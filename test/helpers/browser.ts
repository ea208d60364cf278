// The dashboard's browser tests: Debian's chromium (scripts/ci-deps.sh installs it) driven by
// playwright-core. Without the browser there is nothing to drive: the tests are skipped, and ava's
// summary says so.
import test from 'ava';
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import type { Cluster } from './cluster.js';

export const CHROMIUM = '/usr/bin/chromium';

export const browserTest = existsSync(CHROMIUM) ? test : test.skip;

/** A headless chromium, closed when the test ends. */
export async function launch(t: { teardown(fn: () => Promise<void>): void }): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  t.teardown(() => browser.close());
  return browser;
}

/** The dashboard's address that `cluster`'s ready line names. */
export function dashboardUrl(cluster: Cluster): string {
  return cluster.lines.find((line) => line.event === 'ready')!.dashboard as string;
}
