// Positions in an app's original sources, for what clusterd reports of its code: stacks and blocking
// sites (capture.ts), `loop`'s callbacks (phases.ts) and `profile`'s frames (src/master/inspector.ts).
// The inspector applies no source maps, and tsx compiles each TypeScript module to a single line
// (line 2: every function of a file was "app.ts:2"), keeping its maps in memory with Node's source
// maps turned on. So a position is looked up, as --enable-source-maps does for Error stacks:
// - inside the worker, in Node's own cache (module.findSourceMap) while source maps are on: tsx's;
// - anywhere, through the `sourceMappingURL` comment of the file on disk: a compiled app's .js.map.
// The worker's runtime loads this module (for `loop`): it imports nothing outside Node (no zod).
import { statSync } from 'node:fs';
import { SourceMap, findSourceMap } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { StackFrame } from './types.js';
import { readSmallFileSync } from './untrusted-file.js';

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
      const text = readSmallFileSync(fileURLToPath(url), MAX_SOURCE_MAP_BYTES);
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
    const text = readSmallFileSync(fileURLToPath(location), MAX_SOURCE_MAP_BYTES);
    return text === null ? null : { map: new SourceMap(JSON.parse(text) as never), base: location.href };
  } catch {
    return null;
  }
}

/** The largest source map read: the app names the file (its sourceMappingURL comment), so it could name /dev/zero. */
const MAX_SOURCE_MAP_BYTES = 32 * 1024 * 1024;

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
