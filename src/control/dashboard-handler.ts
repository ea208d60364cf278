// The Dashboard rpc: the master's dashboard feed (src/dashboard/feed.ts) for `clusterd dashboard`,
// which serves the page from its own process. Each message goes out as JSON in pieces (a snapshot
// of many workers can pass gRPC's 4 MiB message limit). A client that does not read costs one
// message: while the stream is backed up, updates are skipped, and a fresh snapshot goes out on
// 'drain' (an update only makes sense after the one before it).
import * as grpc from '@grpc/grpc-js';
import type { DashboardSource, FeedMessage } from '../dashboard/feed.js';
import { MARKER_KINDS } from '../dashboard/history.js';
import { ClusterdError } from '../errors.js';
import { streamLife, type TrackStream } from './stream-life.js';
import type { WireDashboardChunk, WireDashboardRequest } from './proto.js';
import { toServiceError } from './status-codes.js';
import { wireTotals } from './worker-rows.js';

/** Dashboard streams open at once; past it, ABORTED (each costs the master a message per tick). */
export const MAX_DASHBOARD_STREAMS = 16;
/** How a message's JSON is cut: well under gRPC's 4 MiB default message limit. */
export const DASHBOARD_CHUNK_CHARS = 512 * 1024;

type DashboardCall = grpc.ServerWritableStream<WireDashboardRequest, WireDashboardChunk>;

export function dashboardHandler(feed: DashboardSource, track: TrackStream): (call: DashboardCall) => void {
  let following = 0;
  return (call) => {
    if (following >= MAX_DASHBOARD_STREAMS) {
      call.emit('error', toServiceError(new ClusterdError('ERR_CLUSTERD_BUSY', `refused: ${MAX_DASHBOARD_STREAMS} dashboards follow this cluster already`)));
      return;
    }
    following++;
    let blocked = false;
    let stale = false;
    let unsubscribe = (): void => {};
    const stream = streamLife(call, track, {
      onClose: () => {
        following--;
        unsubscribe();
      },
    });
    const readable = markerKindsOf(call.request);
    const send = (whole: FeedMessage): void => {
      if (!stream.open) return;
      const message = { ...whole, totals: wireTotals(whole.totals), markers: whole.markers.filter((marker) => readable.has(marker.kind)) };
      if (blocked) {
        stale = true;
        return;
      }
      const pieces = chunks(JSON.stringify(message));
      for (const piece of pieces) blocked = !call.write(piece) || blocked;
      if (blocked) {
        call.once('drain', () => {
          blocked = false;
          if (stale) {
            stale = false;
            send(feed.snapshot());
          }
        });
      }
    };
    try {
      send(feed.snapshot());
      unsubscribe = feed.subscribe(send);
    } catch (error) {
      stream.close();
      call.emit('error', toServiceError(error));
    }
  };
}

/** What a client that names no kinds reads: the kinds before DashboardRequest.marker_kinds (its check refused a message with another). */
const KINDS_BEFORE_THE_REQUEST_SAID: ReadonlySet<string> = new Set(MARKER_KINDS.filter((kind) => kind !== 'listening'));

/** The marker kinds a client said it reads (bounded: the request is the client's), or the old ones. */
function markerKindsOf(request: WireDashboardRequest | undefined): ReadonlySet<string> {
  const named = (request?.markerKinds ?? []).filter((kind): kind is string => typeof kind === 'string' && kind.length <= 40).slice(0, 64);
  return named.length > 0 ? new Set(named) : KINDS_BEFORE_THE_REQUEST_SAID;
}

/** A message's JSON as the stream's pieces, the last one marked `end`. */
export function chunks(json: string): WireDashboardChunk[] {
  const pieces: WireDashboardChunk[] = [];
  for (let offset = 0; offset < json.length; ) {
    let end = Math.min(json.length, offset + DASHBOARD_CHUNK_CHARS);
    // Never between the two halves of a surrogate pair: each piece must be valid UTF-16 to encode.
    if (end < json.length && /[\uD800-\uDBFF]/.test(json.charAt(end - 1))) end--;
    pieces.push({ json: json.slice(offset, end), end: false });
    offset = end;
  }
  if (pieces.length === 0) pieces.push({ json: '', end: false });
  pieces.at(-1)!.end = true;
  return pieces;
}
