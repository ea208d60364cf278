// Build step: the dashboard's page (src/dashboard/page: HTML, JS, CSS, written by hand, nothing to
// compile) goes to dist/dashboard/page, where the master reads it at start-up.
import { cpSync } from 'node:fs';

cpSync(new URL('../src/dashboard/page/', import.meta.url), new URL('../dist/dashboard/page/', import.meta.url), { recursive: true });
