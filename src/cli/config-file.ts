// `clusterd start`'s config file: clusterd.config.{json,mjs,js,ts} in the current directory, or the
// file `--config` names. It holds the start options under their long flag in camelCase (see
// start-options.ts), plus `entry`, `env` and `args`. What it holds is user input from a file: every
// key and the shape of every value are checked here, and the values then go through the same parsers
// as the command line's, errors naming the key and the file. Command-line flags win over the file.
import { spawn } from 'node:child_process';
import { closeSync, constants, existsSync, fstatSync, openSync, readSync } from 'node:fs';
import { devNull } from 'node:os';
import { dirname, extname, resolve } from 'node:path';
import { configKey, ENV_NAME, FILE_ONLY_KEYS, START_OPTIONS, takesNumber, type StartOption } from './start-options.js';
import { UsageError, oneLine } from '../errors.js';
import { unknownKey } from './known-keys.js';
import { toolEnvironment } from '../system/node-options.js';
import { isSocketPath } from '../control/options.js';
import { TSCONFIG_ENV, findTsconfig, jsonComplaint } from '../master/typescript.js';

/** Looked for in this order in the current directory; two of them at once is an error. */
export const CONFIG_NAMES = ['clusterd.config.json', 'clusterd.config.mjs', 'clusterd.config.js', 'clusterd.config.ts'] as const;

/** A value as the command line would have given it. */
export type FlagValue = string | boolean | string[];

export interface ConfigFile {
  /** The file, absolute. */
  path: string;
  /** Option values by long flag, in command-line form (numbers as their text). */
  flags: Map<string, FlagValue>;
  /** Absolute (resolved from the file's directory). */
  entry?: string;
  env?: Record<string, string>;
  args?: string[];
}

const OPTIONS_BY_KEY = new Map(START_OPTIONS.map((spec) => [configKey(spec.flag), spec]));

/** The keys a config file may hold. */
export const CONFIG_KEYS: readonly string[] = [...FILE_ONLY_KEYS.filter((name) => name !== '$schema'), ...OPTIONS_BY_KEY.keys()];

/** Finds and reads the config file; null when there is none (and none was asked for). */
export async function loadConfig(explicit: string | undefined, cwd = process.cwd()): Promise<ConfigFile | null> {
  let path: string;
  if (explicit !== undefined) {
    path = resolve(cwd, explicit);
    if (!existsSync(path)) throw new UsageError(`--config: ${path} does not exist`);
  } else {
    const found = CONFIG_NAMES.map((name) => resolve(cwd, name)).filter((candidate) => existsSync(candidate));
    if (found.length === 0) return null;
    if (found.length > 1) throw new UsageError(`${found.join(' and ')}: two config files in ${cwd}; keep one, or pick one with --config`);
    path = found[0]!;
  }
  return parseConfig(await readConfig(path), path);
}

/** Far more than any set of options takes: a file past it is not a config file. */
const MAX_CONFIG_BYTES = 1024 * 1024;

/** The file's value: JSON parsed, or a module's default export (a function is called, a promise awaited). */
async function readConfig(path: string): Promise<unknown> {
  const extension = extname(path);
  // A FIFO would block the read for good, /dev/zero would fill memory: only a file, of a config's size.
  // The checks are made on the descriptor that is read, so a file swapped after them is not read instead.
  let text = '';
  let fd: number | undefined;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    const stats = fstatSync(fd);
    if (!stats.isFile()) throw new UsageError(`${path}: not a regular file${stats.isDirectory() ? ' (a directory)' : ''}`);
    if (stats.size > MAX_CONFIG_BYTES) throw new UsageError(`${path}: ${stats.size} bytes, more than a config file's ${MAX_CONFIG_BYTES}: is it the right file?`);
    // A module is read by import(), by its name: only JSON is read here.
    if (extension === '.json') text = readBounded(fd, path);
  } catch (error) {
    throw error instanceof UsageError ? error : new UsageError(`${path}: cannot be read: ${oneLine(error)}`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  if (extension === '.json') {
    // A byte-order mark, as some Windows editors save UTF-8 (Node's require() of JSON skips it too).
    const json = text.replace(/^\uFEFF/, '');
    try {
      return JSON.parse(json) as unknown;
    } catch (error) {
      // Node 20 names only the offset: with its line and column, as a module config's place is named.
      throw new UsageError(`${path}: not valid JSON: ${jsonComplaint(error, json)}`);
    }
  }
  if (!['.mjs', '.js', '.cjs', '.ts', '.mts', '.cts'].includes(extension)) {
    throw new UsageError(`${path}: a config file is .json, .mjs, .js, .cjs, .ts, .mts or .cts`);
  }
  return loadModule(path, extension);
}

/** The file's text, refused if it grew past a config's size since it was checked. */
function readBounded(fd: number, path: string): string {
  const buffer = Buffer.alloc(MAX_CONFIG_BYTES + 1);
  let length = 0;
  for (;;) {
    const read = readSync(fd, buffer, length, buffer.length - length, null);
    if (read === 0) break;
    length += read;
    if (length > MAX_CONFIG_BYTES) throw new UsageError(`${path}: more than a config file's ${MAX_CONFIG_BYTES} bytes: is it the right file?`);
  }
  return buffer.toString('utf8', 0, length);
}

/** How long a config module may take to give its options (a fetch of secrets, say). */
const CONFIG_SETTLE_MS = 30_000;

/**
 * Runs in a node process of its own (`--eval`, the file as its first argument and, for TypeScript,
 * tsx's API as its second): imports the module, takes its default export (called if a function,
 * awaited if a promise), and sends it over IPC (V8's serialization: the values as they are, NaN and
 * undefined included), or what went wrong, then exits, whatever the module left running.
 */
const LOADER = `
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { inspect } from 'node:util';
const [path, tsxApi] = process.argv.slice(1);
let answered = false;
const answer = (message) => {
  if (answered) return;
  answered = true;
  try {
    // structuredClone() first: the copy IPC makes would fail alike, but only this one names a value
    // that cannot be copied (DataCloneError) apart from a getter that throws as it is read.
    if ('value' in message) structuredClone(message.value);
    process.send(message, () => process.exit(0));
  } catch (error) {
    const why = error?.name === 'DataCloneError' ? 'its default export is not plain data (a function, a symbol?): ' : 'reading its default export threw: ';
    process.send({ error: why + (error instanceof Error ? error.message : String(error)) }, () => process.exit(0));
  }
};
// Where a SyntaxError is: a CommonJS file's stack opens with \`file:line\` and the line with a caret
// under the place; an ES module's carries no place at all (Node keeps it for its own fatal-error
// printer), so node --check, which prints the same, is asked. tsx's errors name the place already.
const place = (error) => {
  if (!(error instanceof SyntaxError) || tsxApi) return '';
  let [where, , caret] = String(error.stack).split('\\n');
  if (!/:\\d+$/.test(where)) [where, , caret] = (spawnSync(process.execPath, ['--check', path], { encoding: 'utf8', timeout: 10000 }).stderr ?? '').split('\\n');
  if (!/:\\d+$/.test(where ?? '')) return '';
  const column = /^ *\\^/.test(caret ?? '') ? ':' + (caret.indexOf('^') + 1) : '';
  return where.replace(/^file:\\/\\//, '') + column + ': ';
};
const failed = (error) => answer({ error: error instanceof Error ? place(error) + error.message : 'it threw ' + inspect(error, { depth: 2, breakLength: Infinity }) });
process.on('uncaughtException', failed);
process.on('unhandledRejection', failed);
process.on('beforeExit', () => answer({ error: 'its default export never settled (a promise nothing resolves)' }));
const servers = () => process.getActiveResourcesInfo().filter((name) => name === 'TCPServerWrap' || name === 'PipeServerWrap').length;
try {
  const url = pathToFileURL(path).href;
  const module = tsxApi ? await (await import(tsxApi)).tsImport(url, url) : await import(url);
  let exported = module.default;
  // A TypeScript or CommonJS file compiled to CommonJS: its export default is module.exports.default.
  if (typeof exported === 'object' && exported !== null && 'default' in exported && (Object.keys(exported).length === 1 || exported.__esModule === true)) exported = exported.default;
  exported = typeof exported === 'function' ? await exported() : await exported;
  await new Promise((resolve) => setImmediate(resolve));
  // The app given as its own config (--config app.js) would have listened in the master, and every
  // worker then failed on a port the master itself held.
  if (servers() > 0) answer({ error: 'loading it started a server: is it the app? A config file only exports options (export default { ... }); the app is the entry' });
  else if (exported === undefined) answer({ error: 'has no default export (export default { ... })' });
  else answer({ value: exported });
} catch (error) {
  failed(error);
}
`;

/**
 * A .mjs/.js/.ts config's default export, from a node process of its own. Imported into this one, the
 * module lived on in the master for the cluster's life: a timer or a client it left running that
 * threw later took the cluster down ("internal error", every worker killed, requests cut), and an
 * unhandled rejection while it loaded did the same. A .ts file goes through tsx, which clusterd
 * already uses for .ts apps.
 */
function loadModule(path: string, extension: string): Promise<unknown> {
  const typescript = ['.ts', '.mts', '.cts'].includes(extension);
  const args = ['--input-type=module', '--eval', LOADER, path, ...(typescript ? [import.meta.resolve('tsx/esm/api')] : [])];
  // A .ts config gets its own nearest tsconfig.json, as a .ts entry does (tsx would take the current
  // directory's: its `paths` were not found from anywhere else), unless TSX_TSCONFIG_PATH names one.
  // NODE_OPTIONS' --inspect is for the app's workers, not for this process of clusterd's own.
  const own = toolEnvironment(process.env);
  const env = typescript && !own[TSCONFIG_ENV] ? { ...own, [TSCONFIG_ENV]: findTsconfig(dirname(path)) ?? devNull } : own;
  // The module's own output (a console.log of what it loaded) goes to stderr: clusterd's stdout is
  // its own lines, one JSON object each with --log-format json.
  const child = spawn(process.execPath, args, { stdio: ['ignore', process.stderr, 'inherit', 'ipc'], serialization: 'advanced', env });
  return new Promise((resolve, reject) => {
    let answer: unknown;
    const timer = setTimeout(() => {
      reject(new UsageError(`${path}: its default export did not settle within ${CONFIG_SETTLE_MS / 1000} s`));
      child.kill('SIGKILL');
    }, CONFIG_SETTLE_MS);
    child.on('message', (message) => (answer ??= message));
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new UsageError(`${path}: cannot be loaded: ${oneLine(error)}`));
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (isObject(answer) && 'value' in answer) resolve(answer.value);
      else if (isObject(answer) && 'error' in answer && typeof answer.error === 'string') reject(new UsageError(loadError(path, oneLine(answer.error))));
      else reject(new UsageError(`${path}: loading it ended its process (${signal ?? `exit code ${code}`}) before it gave its options`));
    });
  });
}

/**
 * The loader's error as one line that names the file once. A syntax error names its place already,
 * `path:3:14: Unexpected token '*'` (tsx's: `Transform failed with 1 error: path:3:13: ERROR: ...`,
 * its column counted from 0): the path was put before it a second time.
 */
export function loadError(path: string, error: string): string {
  if (error.startsWith(`${path}:`) && /^\d/.test(error.slice(path.length + 1))) return error;
  const tsx = `Transform failed with 1 error: ${path}:`;
  const place = error.startsWith(tsx) ? /^(\d+):(\d+): ERROR: (.*)$/.exec(error.slice(tsx.length)) : null;
  if (place) return `${path}:${place[1]}:${Number(place[2]) + 1}: ${place[3]}`;
  return `${path}: ${error}`;
}

/** Checks every key and value's shape; the values' ranges are checked later, by the command line's parsers. */
export function parseConfig(value: unknown, path: string): ConfigFile {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || holdsNoKeys(value)) {
    throw new UsageError(`${path}: expected an object of options, got ${describe(value)}`);
  }
  const config: ConfigFile = { path, flags: new Map() };
  for (const [key, raw] of Object.entries(value)) {
    // A key set to undefined is a key not given, as for start() (a typed config writes `x ? n : undefined`).
    if (raw === undefined) continue;
    const bad = (expected: string): UsageError => new UsageError(`${path}: expected \`${key}\` to be ${expected}, got ${describe(raw)}`);
    // No argument, environment variable or path can carry one: every fork would fail, late and unclearly.
    let nul: boolean;
    try {
      nul = holdsNul(raw);
    } catch {
      // A module's value can (`o.self = o`): no option is such a thing, and checking it recursed without end.
      throw new UsageError(`${path}: \`${key}\` refers to itself, which no option can`);
    }
    if (nul) throw new UsageError(`${path}: \`${key}\` holds a NUL character (\\u0000), which no argument, environment variable or path can carry`);
    if (key === '$schema') {
      if (typeof raw !== 'string') throw bad('a string');
    } else if (key === 'entry') {
      if (typeof raw !== 'string' || raw.trim() === '') throw bad('the path of the app');
      config.entry = resolve(dirname(path), raw);
    } else if (key === 'args') {
      if (!Array.isArray(raw) || !raw.every((item) => typeof item === 'string')) throw bad('an array of strings');
      config.args = [...(raw as string[])];
    } else if (key === 'env') {
      config.env = parseEnv(raw, bad, path);
    } else {
      const spec = OPTIONS_BY_KEY.get(key);
      if (!spec) throw unknownKey(path, key, CONFIG_KEYS);
      config.flags.set(spec.flag, resolvePath(spec, flagValue(spec, raw, bad), dirname(path)));
    }
  }
  return config;
}

/** A NUL in a string anywhere in `value` (its keys too). Throws a RangeError for a value that holds itself. */
function holdsNul(value: unknown, inside: object[] = []): boolean {
  if (typeof value === 'string') return value.includes('\0');
  if (typeof value !== 'object' || value === null) return false;
  if (inside.includes(value)) throw new RangeError('refers to itself');
  const within = [...inside, value];
  if (Array.isArray(value)) return value.some((item) => holdsNul(item, within));
  return Object.entries(value).some(([key, item]) => key.includes('\0') || holdsNul(item, within));
}

function parseEnv(raw: unknown, bad: (expected: string) => UsageError, path: string): Record<string, string> {
  const expected = 'an object of environment variables (names of letters, digits and _, values strings, numbers or booleans)';
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad(expected);
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(raw)) {
    // Named, in a file that may set dozens.
    if (!ENV_NAME.test(name)) throw new UsageError(`${path}: expected \`env\` to be ${expected}, got the name \`${name.slice(0, 100)}\``);
    if (!['string', 'number', 'boolean'].includes(typeof value) || (typeof value === 'number' && !Number.isFinite(value))) {
      throw new UsageError(`${path}: expected \`env\` to be ${expected}, got ${describe(value)} for ${name}`);
    }
    env[name] = String(value);
  }
  return env;
}

/** A path in the file is relative to the file (`base`, its directory), as `entry` is, not to wherever clusterd was started from. */
function resolvePath(spec: StartOption, value: FlagValue, base: string): FlagValue {
  if (typeof value !== 'string' || spec.path === undefined || value.trim() === '') return value;
  if (spec.path === 'socket' && !isSocketPath(value)) return value;
  const text = value.trim();
  const absolute = resolve(base, text);
  // resolve() drops a trailing slash, which says "a directory": kept, for a `cwd` of `wd/` (found
  // from the file, not from where start ran), and for the parsers that refuse a directory's name
  // as a log file or a socket.
  return text.endsWith('/') && !absolute.endsWith('/') ? `${absolute}/` : absolute;
}

/**
 * Options in the config file's form with their paths made absolute from `base`: for start(), whose
 * options are relative to its `cwd` but reach the master in a file of their own elsewhere.
 */
export function withAbsolutePaths<T extends Record<string, unknown>>(options: T, base: string): T {
  const resolved: Record<string, unknown> = { ...options };
  for (const [key, value] of Object.entries(options)) {
    const spec = OPTIONS_BY_KEY.get(key);
    if (spec?.path !== undefined && typeof value === 'string') resolved[key] = resolvePath(spec, value, base);
  }
  return resolved as T;
}

/** A file value in command-line form: numbers as text, so that one parser reads both. */
function flagValue(spec: StartOption, raw: unknown, bad: (expected: string) => UsageError): FlagValue {
  if (spec.kind === 'boolean') {
    if (typeof raw !== 'boolean') throw bad('true or false');
    return raw;
  }
  if (spec.kind === 'strings') {
    if (!Array.isArray(raw) || !raw.every((item) => typeof item === 'string')) throw bad('an array of strings');
    return [...(raw as string[])];
  }
  if (typeof raw === 'string') return raw;
  // A number only where the schema takes one: `"name": 123` is a mistake the schema refuses, not a name.
  const numeric = !spec.choices && takesNumber(spec.schema);
  if (typeof raw === 'number' && Number.isFinite(raw) && numeric) return String(raw);
  throw bad(spec.choices ? `one of ${spec.choices.join(', ')}` : numeric ? 'a string or a number' : 'a string');
}

function isObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null;
}

/** A Map, a Set or a Date (a module's value may be one): no key of its is an own property, so it read as no options at all. */
function holdsNoKeys(value: object): boolean {
  return value instanceof Map || value instanceof Set || value instanceof Date;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `\`${value}\``;
  if (typeof value === 'object') return holdsNoKeys(value) ? `a ${value.constructor.name}` : 'an object';
  return `${typeof value} \`${String(value)}\``;
}
