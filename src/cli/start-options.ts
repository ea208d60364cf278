// Every option of `clusterd start`, declared once: the command line (yargs), the config file's keys
// (the long flag in camelCase) and the JSON Schema published for editors are all made from this
// table, so none of them can drift from the others. Values from either source are checked by the
// same parsers (masterOptions in start.ts); the schema only helps editors say so earlier.
import { BALANCE_MODES } from '../master/balancers/index.js';
import { MAX_LOG_KEEP } from '../master/log-file.js';
import { LOG_FORMATS } from '../master/logs.js';
import { DASHBOARD_TOKEN_ENV, TOKEN_ENV } from '../control/options.js';
import { CLUSTER_NAME_PATTERN, DURATION, killSignals, MAX_INSTANCES, MAX_MEMORY_LIMIT, MAX_TIMER_MS, MIN_MEMORY_LIMIT } from '../options.js';

/** More boots in a row than this is a crash loop, not patience. */
export const MAX_BOOT_FAILURES = 1000;

/** A JSON Schema fragment (draft 2020-12), as much of it as the options need. */
export interface JsonSchema {
  type?: string | string[];
  description?: string;
  enum?: readonly (string | number)[];
  const?: string | number;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  items?: JsonSchema;
  oneOf?: JsonSchema[];
  anyOf?: JsonSchema[];
  properties?: Record<string, JsonSchema>;
  additionalProperties?: boolean | JsonSchema;
  propertyNames?: JsonSchema;
  required?: string[];
  dependentRequired?: Record<string, string[]>;
  default?: unknown;
  $schema?: string;
  title?: string;
}

/** The schema takes a number somewhere (a port, seconds, bytes): a config file may write the value as one. */
export function takesNumber(schema: JsonSchema): boolean {
  if (schema.type === 'number' || schema.type === 'integer' || typeof schema.const === 'number') return true;
  if (schema.enum?.some((value) => typeof value === 'number')) return true;
  return [...(schema.oneOf ?? []), ...(schema.anyOf ?? [])].some(takesNumber);
}

export interface StartOption {
  /** The long flag, kebab-case; the config file's key is its camelCase. */
  flag: string;
  alias?: string;
  /** string: one value (durations, sizes, addresses...); boolean: a switch; strings: repeatable. */
  kind: 'string' | 'boolean' | 'strings';
  /** As typed on the command line; applied after the command line and the file are merged. */
  default?: string | boolean;
  choices?: readonly string[];
  describe: string;
  /** What the config file may hold for it (numbers are written as on the command line). */
  schema: JsonSchema;
  /**
   * A path, which a config file gives relative to itself: 'file' always, 'socket' when the value is a
   * socket path rather than an address (parseListenAddress's rule). On the command line, relative to
   * the current directory.
   */
  path?: 'file' | 'socket';
}

// The schema says what the parsers accept, as far as a schema can: every parser trims its value
// (hence the \\s* around each pattern), numbers have the parser's range exactly, and so do integers
// written as text and ports (a duration's range is judged before it is rounded to the millisecond,
// by both). What a schema cannot say is left to the parsers, which run on every value anyway: the
// range of a duration written as text (but a 0 where none is taken) or of a size written with a
// unit, a fraction of a byte, a `cwd` that must exist, a socket path's length once absolute, a token
// file's content, a dashboard token with a socket.

/** A pattern for the whole numbers from 0 to `max` written without leading zeros: `0`, `7`, `65535`. */
export function upToPattern(max: number): string {
  const digits = String(max);
  const rest = (count: number): string => (count === 0 ? '' : count === 1 ? '\\d' : `\\d{${count}}`);
  const range = (low: number, high: number): string => (low === high ? String(low) : `[${low}-${high}]`);
  const alternatives = [digits];
  // As many digits as `max`, below it: its first i digits, then a lower one, then any.
  for (let i = 0; i < digits.length; i++) {
    const low = i === 0 && digits.length > 1 ? 1 : 0;
    const digit = Number(digits[i]);
    if (digit > low) alternatives.push(`${digits.slice(0, i)}${range(low, digit - 1)}${rest(digits.length - i - 1)}`);
  }
  // Fewer digits: any number.
  if (digits.length > 1) alternatives.push('0', digits.length === 2 ? '[1-9]' : `[1-9]\\d{0,${digits.length - 2}}`);
  return `(?:${alternatives.join('|')})`;
}

/** An integer from `min` (0 or 1) to `max`, as a JSON number or as text (parseInteger reads `"5"` and `" 05"`). */
function integerSchema(min: 0 | 1, max: number, ...others: JsonSchema[]): JsonSchema {
  const digits = `${min === 1 ? '(?!0+\\s*$)' : ''}0*${upToPattern(max)}`;
  return { anyOf: [{ type: 'integer', minimum: min, maximum: max }, ...others, { type: 'string', pattern: `^\\s*${digits}\\s*$` }] };
}

/** A TCP port, 0 to 65535: at most five digits in HOST:PORT (parseControlAddress), any number of leading zeros alone (parseListenAddress). */
const PORT_NUMBER = upToPattern(65_535);
const PORT = `(?=\\d{1,5}\\s*$)0*${PORT_NUMBER}`;
/** HOST:PORT as parseControlAddress reads it: a host without a colon, or one in brackets (IPv6). */
const HOST_PORT = `(?:\\[[^\\]]+\\]|[^:[\\]]+):${PORT}`;
const ADDRESS_SCHEMA: JsonSchema = { type: 'string', pattern: `^\\s*${HOST_PORT}\\s*$` };

/** A duration of 0 as text: `0`, `0.0`, `00ms`. */
const ZERO_DURATION = '0+(?:\\.0+)?(?:ms|s|m|h|d)?';

/**
 * A duration as the command line takes it ("500ms", "10s", "2m", "1h", "1d") or a number of seconds,
 * from `min` ms (0 besides, when `off`) to Node's timer limit: the ranges given to parseDuration in
 * masterOptions (start.ts), which judges them before it rounds to the millisecond. 0 is taken where
 * it is off or the least value; a value under 1 ms never is (parseDuration's sliver). Written as
 * text, the form is checked and a 0 where none is taken; the range is parseDuration's.
 */
function durationSchema({ min = 1, off = false }: { min?: number; off?: boolean } = {}): JsonSchema {
  const zero = off || min === 0;
  const seconds: JsonSchema = zero ? { anyOf: [{ const: 0 }, { minimum: Math.max(min, 1) / 1000 }] } : { minimum: min / 1000 };
  const notZero = zero ? '' : `(?!${ZERO_DURATION}\\s*$)`;
  return {
    oneOf: [
      { type: 'string', pattern: `^\\s*${notZero}${DURATION.source.slice(1, -1)}\\s*$` },
      { type: 'number', ...seconds, maximum: MAX_TIMER_MS / 1000 },
    ],
  };
}

/** A size as parseSize() reads it (its regex is case-insensitive, which a schema pattern cannot say), or bytes from `min` to `max`. */
function sizeSchema(min: number, max = MAX_MEMORY_LIMIT): JsonSchema {
  return { oneOf: [{ type: 'string', pattern: '^\\s*\\d+(\\.\\d+)?([KMGTkmgt])?([Ii]?[Bb])?\\s*$' }, { type: 'number', minimum: min, maximum: max }] };
}

/** A token as isTokenText() takes it: printable ASCII, not empty, no space at either end. */
const TOKEN_SCHEMA: JsonSchema = { type: 'string', pattern: '^[!-~](?:[ -~]*[!-~])?$' };

const option = (flag: string, spec: Omit<StartOption, 'flag'>): StartOption => ({ flag, ...spec });

export const START_OPTIONS: readonly StartOption[] = [
  option('instances', {
    alias: 'i',
    kind: 'string',
    default: 'max',
    describe: `Number of workers (1 to ${MAX_INSTANCES}), or \`max\` for one per CPU (a container's CPU limit counts)`,
    schema: integerSchema(1, MAX_INSTANCES, { enum: ['max'] }, { type: 'string', pattern: '^\\s*max\\s*$' }),
  }),
  option('name', { kind: 'string', describe: 'Cluster name (default: the entry file name)', schema: { type: 'string', pattern: CLUSTER_NAME_PATTERN.source } }),
  option('balance', {
    kind: 'string',
    default: 'fair',
    choices: BALANCE_MODES,
    describe:
      'fair: workers accept for themselves, each up to an even share of the open connections, a worker whose loop is stalled paused and one whose loop lags last in line; rr: the master hands each connection to the next free worker; least: to the free worker with the fewest connections and the lowest loop lag; sticky: one client address always to the same worker; shared: workers accept from one shared socket; reuseport: each worker its own SO_REUSEPORT socket (Node >= 22.12, Linux)',
    schema: { enum: BALANCE_MODES },
  }),
  option('wait-ready', { kind: 'boolean', default: false, describe: "A worker is ready when the app calls process.send('ready'), not when its servers listen", schema: { type: 'boolean' } }),
  option('listen-timeout', { kind: 'string', default: '10s', describe: 'How long a worker may take to get ready before it counts as a failed boot (1ms to about 24.8d)', schema: durationSchema() }),
  option('grace', { kind: 'string', default: '10s', describe: 'How long workers may drain on stop before they are killed (0: killed at once; up to about 24.8d)', schema: durationSchema({ min: 0 }) }),
  option('kill-signal', {
    kind: 'string',
    default: 'SIGTERM',
    describe: "The signal the app's listeners hear on a graceful stop (process.on(SIGNAL)), as its servers drain; not SIGKILL, SIGSTOP or SIGUSR1",
    schema: { enum: killSignals() },
  }),
  option('max-boot-failures', {
    kind: 'string',
    default: '3',
    describe: `Give up after this many failed boots in a row while no worker serves: at start-up of all workers together, once the cluster has run of one worker id (1 to ${MAX_BOOT_FAILURES})`,
    schema: integerSchema(1, MAX_BOOT_FAILURES),
  }),
  option('stats-interval', {
    kind: 'string',
    default: '1s',
    describe: 'How often each worker reports loop lag, ELU, CPU, memory and HTTP counters (10ms to about 24.8d); 0 turns them off',
    schema: durationSchema({ min: 10, off: true }),
  }),
  option('watchdog', {
    kind: 'string',
    default: '5s',
    describe: 'Replace a worker whose event loop stays blocked this long, logging its JavaScript stack (10ms to about 24.8d); 0 turns it off (clusterd stack still works)',
    schema: durationSchema({ min: 10, off: true }),
  }),
  option('report-blocked', {
    kind: 'string',
    default: '100ms',
    describe: 'Take the JavaScript stack of a worker whose event loop stays blocked this long, without harming it, and keep where it was blocked for status (10ms to about 24.8d); 0 turns it off',
    schema: durationSchema({ min: 10, off: true }),
  }),
  option('max-memory', {
    kind: 'string',
    describe: 'Replace (drained, new worker first) a worker whose RSS stays above this size, from 16M to 1T, e.g. 512M',
    schema: sizeSchema(MIN_MEMORY_LIMIT),
  }),
  option('log-format', { kind: 'string', default: 'text', choices: LOG_FORMATS, describe: 'text: `[w2] line`; json: one object per line', schema: { enum: LOG_FORMATS } }),
  option('log-file', {
    kind: 'string',
    path: 'file',
    describe: 'Write the master\'s and workers\' lines to this file (text lines get a timestamp), reopened on SIGUSR1 (logrotate); default for -d: <runtime dir>/<name>.log',
    // Not blank, and no directory's name (`logs/`).
    schema: { type: 'string', pattern: '[^/\\s]\\s*$' },
  }),
  option('log-max-size', {
    kind: 'string',
    describe: 'Rotate the log file when it would pass this size (1K to 1T, e.g. 100M): FILE becomes FILE.1, and so on',
    schema: sizeSchema(1024),
  }),
  option('log-keep', {
    kind: 'string',
    default: '5',
    describe: `Rotated log files kept with --log-max-size (0 to ${MAX_LOG_KEEP}; 0 empties the file instead)`,
    schema: integerSchema(0, MAX_LOG_KEEP),
  }),
  option('daemon', {
    alias: 'd',
    kind: 'boolean',
    default: false,
    describe: 'Run in the background; return once every worker is ready (or the app failed). Logs go to <runtime dir>/<name>.log',
    schema: { type: 'boolean' },
  }),
  option('metrics', { kind: 'string', describe: 'Serve Prometheus metrics on HOST:PORT/metrics', schema: ADDRESS_SCHEMA }),
  option('health', {
    kind: 'string',
    describe: 'Serve GET /livez and /readyz on HOST:PORT for probes: /readyz is 503 while no worker is ready or the cluster is stopping',
    schema: ADDRESS_SCHEMA,
  }),
  option('dashboard', {
    kind: 'string',
    path: 'socket',
    describe:
      "Serve a live dashboard of every worker's loop (last 15 minutes) on HOST:PORT, e.g. 127.0.0.1:7071, or PORT alone for 127.0.0.1 (read-only without --dashboard-token), or on a unix socket PATH: a value with a / or ending in .sock, e.g. ./dash.sock (mode 0600; actions need no token there)",
    // A port (as a number too), HOST:PORT, or a socket path: one with a / or ending in .sock, not ending in / (a directory).
    schema: { oneOf: [{ type: 'integer', minimum: 0, maximum: 65_535 }, { type: 'string', pattern: `^\\s*(?:0*${PORT_NUMBER}|${HOST_PORT}|.*/.*[^/\\s]|.*\\.sock)\\s*$` }] },
  }),
  option('dashboard-token', {
    kind: 'string',
    describe: `Allow the dashboard's actions (reload, restart a worker, profile, loop breakdown) on TCP to requests with Authorization: Bearer TOKEN (or $${DASHBOARD_TOKEN_ENV})`,
    schema: TOKEN_SCHEMA,
  }),
  option('dashboard-token-file', { kind: 'string', path: 'file', describe: 'Read the --dashboard-token from this file (keeps it out of ps)', schema: { type: 'string' } }),
  option('shutdown-delay', {
    kind: 'string',
    default: '0',
    describe: 'On SIGTERM (or SIGQUIT), turn /readyz to 503 at once and keep serving this long before draining (the time a load balancer or Kubernetes takes to stop sending; up to about 24.8d); a second SIGTERM drains at once',
    schema: durationSchema({ min: 0 }),
  }),
  option('control', { kind: 'string', describe: 'Also serve the control plane on TCP HOST:PORT (needs a token)', schema: ADDRESS_SCHEMA }),
  option('control-token', { kind: 'string', describe: `Token required on --control (or $${TOKEN_ENV})`, schema: TOKEN_SCHEMA }),
  option('control-token-file', { kind: 'string', path: 'file', describe: 'Read the --control token from this file', schema: { type: 'string' } }),
  option('cwd', {
    kind: 'string',
    path: 'file',
    describe:
      "The workers' working directory, where a relative entry is found too (default: where clusterd was started, by the path the shell shows). Kept as given, symlinks and all, and entered anew by every worker: after a deploy moves a `current` symlink, reload runs the new release in its own directory",
    schema: { type: 'string' },
  }),
  option('node-arg', {
    kind: 'strings',
    describe: "A flag for the workers' node, e.g. --node-arg=--max-old-space-size=512 (repeatable)",
    schema: { type: 'array', items: { type: 'string' } },
  }),
];

/** `listen-timeout` -> `listenTimeout`: the option's key in a config file. */
export function configKey(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

/** Keys a config file may hold besides the options. */
export const FILE_ONLY_KEYS = ['$schema', 'entry', 'env', 'args'] as const;

/** An environment variable's name, as the config file's `env` keys must be. */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The JSON Schema of `clusterd.config.json` (and of what a .js/.ts config exports). */
export function configSchema(version: string): JsonSchema {
  const properties: Record<string, JsonSchema> = {
    $schema: { type: 'string', description: 'This schema, for editors' },
    entry: { type: 'string', description: 'The app: .js, .mjs, .cjs, .ts, .mts or .cts, relative to this file (a command-line entry wins)' },
    env: {
      type: 'object',
      description: "Environment variables for the app's workers, over the master's own",
      propertyNames: { pattern: ENV_NAME.source },
      additionalProperties: { type: ['string', 'number', 'boolean'] },
    },
    args: { type: 'array', items: { type: 'string' }, description: "The app's arguments (what follows -- on the command line, which wins)" },
  };
  for (const spec of START_OPTIONS) {
    const described: JsonSchema = { ...spec.schema, description: spec.describe };
    if (spec.default !== undefined) described.default = spec.kind === 'boolean' || Number.isNaN(Number(spec.default)) ? spec.default : Number(spec.default);
    properties[configKey(spec.flag)] = described;
  }
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: `clusterd ${version}: the options of clusterd start (clusterd.config.json)`,
    type: 'object',
    properties,
    additionalProperties: false,
    // The dashboard's token allows actions on the dashboard: without one it is refused (masterOptions).
    dependentRequired: { dashboardToken: ['dashboard'], dashboardTokenFile: ['dashboard'] },
  };
}
