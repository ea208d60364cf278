// Positions in an app's original sources, for what clusterd reports of its code: stacks and blocking
// sites (capture.ts), `loop`'s callbacks (phases.ts) and `profile`'s frames (src/master/inspector.ts).
// The inspector applies no source maps, and tsx compiles each TypeScript module to a single line
// (line 2: every function of a file was "app.ts:2"), keeping its maps in memory with Node's source
// maps turned on. So a position is looked up, as --enable-source-maps does for Error stacks:
// - inside the worker, in Node's own cache (module.findSourceMap) while source maps are on: tsx's;
// - anywhere, through the `sourceMappingURL` comment of the file on disk: a compiled app's .js.map.
import { closeSync, constants, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { SourceMap, findSourceMap } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { z } from 'zod';
import type { CpuProfile, StackFrame } from './types.js';
import { clip } from '../errors.js';

/** A place in a source: its URL and 1-based line and column. */
export type Position = Pick<StackFrame, 'url' | 'line' | 'column'>;

/** Parsed source maps of files on disk by URL, size and time (null: none or unreadable), the most recent MAX_SOURCE_MAPS. */
const sourceMaps = new Map<string, { map: SourceMap; base: string } | null>();
const MAX_SOURCE_MAPS = 64;

/**
 * Where a 1-based generated position of this process's code comes from in the original source: from
 * Node's cache while source maps are on, else from the file's comment; null where no map says.
 */
export function originalPosition(url: string, line: number, column: number): Position | null {
  if (line < 1 || column < 1) return null;
  if (process.sourceMapsEnabled) {
    try {
      const file = url.startsWith('file:') ? fileURLToPath(url) : url;
      const map = findSourceMap(url) ?? findSourceMap(file);
      const entry = map?.findEntry(line - 1, column - 1) as Partial<{ originalSource: string; originalLine: number; originalColumn: number }> | undefined;
      if (entry?.originalSource !== undefined && entry.originalLine !== undefined && entry.originalColumn !== undefined) {
        return { url: sourceUrl(entry.originalSource, url), line: entry.originalLine + 1, column: entry.originalColumn + 1 };
      }
    } catch {
      // A map that does not parse, or a URL that is not a file: as without one.
    }
  }
  const onDisk = mappedOnDisk(url, line - 1, column - 1);
  return onDisk.url === undefined ? null : { url: onDisk.url, line: onDisk.line!, column: onDisk.column! };
}

/** The original URL and 1-based position of a 0-based generated one, through the file's sourceMappingURL; {} without one. */
export function mappedOnDisk(url: string, line: number, column: number): Partial<StackFrame> {
  if (!url.startsWith('file:')) return {};
  let cached: { map: SourceMap; base: string } | null | undefined;
  try {
    const { size, mtimeMs } = statSync(fileURLToPath(url));
    const key = `${url} ${size} ${mtimeMs}`;
    cached = sourceMaps.get(key);
    if (cached === undefined) {
      const text = readSmallFile(fileURLToPath(url));
      const comment = text === null ? undefined : SOURCE_MAPPING_URL.exec(lastLine(text))?.[1];
      cached = comment === undefined ? null : loadSourceMap({ url, sourceMapURL: comment });
      if (sourceMaps.size >= MAX_SOURCE_MAPS) sourceMaps.delete(sourceMaps.keys().next().value!);
      sourceMaps.set(key, cached);
    }
  } catch {
    return {};
  }
  if (cached === null) return {};
  const entry = cached.map.findEntry(line, column) as Partial<{ originalSource: string; originalLine: number; originalColumn: number }>;
  if (entry.originalSource === undefined || entry.originalLine === undefined || entry.originalColumn === undefined) return {};
  const root = (cached.map.payload as { sourceRoot?: unknown }).sourceRoot;
  return { url: sourceUrl(`${typeof root === 'string' ? root : ''}${entry.originalSource}`, cached.base), line: entry.originalLine + 1, column: entry.originalColumn + 1 };
}

/** The comment that names a script's source map, on its last line (as V8 reads it: `//#` or the old `//@`). */
const SOURCE_MAPPING_URL = /^\s*\/[/*][#@]\s*sourceMappingURL=(\S+?)\s*(?:\*\/)?$/;

function lastLine(text: string): string {
  const trimmed = text.trimEnd();
  return trimmed.slice(trimmed.lastIndexOf('\n') + 1);
}

function loadSourceMap({ url, sourceMapURL }: { url: string; sourceMapURL: string }): { map: SourceMap; base: string } | null {
  try {
    if (sourceMapURL.startsWith('data:')) {
      const comma = sourceMapURL.indexOf(',');
      const data = sourceMapURL.slice(comma + 1);
      const text = sourceMapURL.slice(0, comma).endsWith(';base64') ? Buffer.from(data, 'base64').toString('utf8') : decodeURIComponent(data);
      return { map: new SourceMap(JSON.parse(text) as never), base: url };
    }
    const location = new URL(sourceMapURL, url);
    if (location.protocol !== 'file:') return null;
    const text = readSmallFile(fileURLToPath(location));
    return text === null ? null : { map: new SourceMap(JSON.parse(text) as never), base: location.href };
  } catch {
    return null;
  }
}

/** The largest source map read: the app names the file (its sourceMappingURL comment), so it could name /dev/zero. */
const MAX_SOURCE_MAP_BYTES = 32 * 1024 * 1024;

/** A regular file's text when it is at most MAX_SOURCE_MAP_BYTES, else null. */
function readSmallFile(path: string): string | null {
  // Non-blocking, so that opening a FIFO does not wait for a writer.
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile() || stats.size > MAX_SOURCE_MAP_BYTES) return null;
    const buffer = Buffer.alloc(stats.size);
    let read = 0;
    while (read < buffer.length) {
      const bytes = readSync(fd, buffer, read, buffer.length - read, read);
      if (bytes === 0) break;
      read += bytes;
    }
    return buffer.toString('utf8', 0, read);
  } finally {
    closeSync(fd);
  }
}

/** A source map's `sources` entry as a URL, like every other frame's: absolute paths become file: URLs. */
export function sourceUrl(source: string, base: string): string {
  if (source.startsWith('/')) return pathToFileURL(source).href;
  try {
    return new URL(source, base).href;
  } catch {
    return source;
  }
}

/** The longest URL kept from what a worker says (an app's `//# sourceURL=` or map can name anything). */
export const MAX_URL_CHARS = 4000;

/** What a profile's mapping needs of an inspector session on the worker. */
interface Session {
  post(method: string, params?: object): Promise<unknown>;
}

/** The most distinct positions of one profile looked up (a profile of a large app has a few thousand). */
export const MAX_MAPPED_POSITIONS = 10_000;
/** How long the worker may take to answer the lookup before the profile goes out with what the files on disk say. */
const MAPPING_TIMEOUT_MS = 2000;

/**
 * Runs in the worker: each [url, line, column] (1-based) through Node's cache of source maps, as
 * [source, line, column], or null where it has none (source maps off, or no map for that file).
 */
function mappingProbe(positions: ReadonlyArray<readonly [string, number, number]>): string {
  return `(() => {
  const maps = process.sourceMapsEnabled && typeof process.getBuiltinModule === 'function' ? process.getBuiltinModule('node:module') : null;
  const urls = maps ? process.getBuiltinModule('node:url') : null;
  return ${JSON.stringify(positions)}.map(([url, line, column]) => {
    if (!maps) return null;
    try {
      const map = maps.findSourceMap(url) ?? (url.startsWith('file:') ? maps.findSourceMap(urls.fileURLToPath(url)) : undefined);
      const entry = map?.findEntry(line - 1, column - 1);
      return entry && typeof entry.originalSource === 'string' ? [entry.originalSource, entry.originalLine + 1, entry.originalColumn + 1] : null;
    } catch {
      return null;
    }
  });
})()`;
}

const position = z.number().int().nonnegative();

/**
 * Rewrites the frames of a profile just taken from a worker (over `session`, still open) to where
 * they are in the original sources, so that its summary and the tools that open the file (DevTools,
 * speedscope) show the app's TypeScript lines. The worker's answer is parsed as any message from it;
 * a worker that does not answer in time leaves the frames as the files on disk map them. A mapped
 * frame loses its per-line ticks, which count generated lines.
 */
export async function mapProfile(session: Session, profile: CpuProfile): Promise<void> {
  const positions = new Map<string, [string, number, number]>();
  const keyOf = ({ url, lineNumber, columnNumber }: CpuProfile['nodes'][number]['callFrame']): string => `${lineNumber}:${columnNumber}:${url}`;
  for (const { callFrame } of profile.nodes) {
    if (positions.size >= MAX_MAPPED_POSITIONS) break;
    const url = callFrame.url.startsWith('/') ? pathToFileURL(callFrame.url).href : callFrame.url;
    if (!url.startsWith('file:') || callFrame.lineNumber < 0 || callFrame.columnNumber < 0) continue;
    positions.set(keyOf(callFrame), [url, callFrame.lineNumber + 1, callFrame.columnNumber + 1]);
  }
  if (positions.size === 0) return;
  const asked = [...positions.values()];
  const answers = await askWorker(session, asked);
  const found = new Map<string, Position | null>();
  [...positions.keys()].forEach((key, index) => {
    const [url, line, column] = asked[index]!;
    const answer = answers?.[index];
    const onDisk = (): Position | null => {
      const mapped = mappedOnDisk(url, line - 1, column - 1);
      return mapped.url === undefined ? null : { url: mapped.url, line: mapped.line!, column: mapped.column! };
    };
    found.set(key, answer ? { url: sourceUrl(answer[0], url), line: answer[1], column: answer[2] } : onDisk());
  });
  for (const node of profile.nodes) {
    const original = found.get(keyOf(node.callFrame));
    if (!original) continue;
    node.callFrame = { ...node.callFrame, url: original.url, lineNumber: original.line - 1, columnNumber: original.column - 1 };
    delete (node as { positionTicks?: unknown }).positionTicks;
  }
}

async function askWorker(session: Session, positions: ReadonlyArray<readonly [string, number, number]>): Promise<Array<[string, number, number] | null> | null> {
  const answers = z.object({
    result: z.object({
      value: z
        .array(z.tuple([z.string().transform((text) => clip(text, MAX_URL_CHARS)), position, position]).nullable())
        .length(positions.length),
    }),
  });
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<null>((resolve) => (timer = setTimeout(resolve, MAPPING_TIMEOUT_MS, null)));
  const reply = session.post('Runtime.evaluate', { expression: mappingProbe(positions), returnByValue: true, silent: true });
  reply.catch(() => {});
  try {
    const parsed = answers.safeParse(await Promise.race([reply, late]));
    return parsed.success ? parsed.data.result.value : null;
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
  }
}
