// The connections that outlive a request: HTTP/2 sessions and upgraded (WebSocket) connections.
// A drain must tell HTTP/2 sessions to go (GOAWAY), and must be able to say, when --grace runs out,
// how many WebSockets were still open. Neither is on a request's path: a session is found once,
// when it starts; an upgraded connection once, when it is upgraded.
import type http from 'node:http';
import type { Http2Session } from 'node:http2';
import type net from 'node:net';

/** Open HTTP/2 sessions, by server (only http2 servers emit 'session'). */
const sessions = new Map<net.Server, Set<Http2Session>>();
/** Open upgraded connections: their server, and whether they speak WebSocket. */
const upgrades = new Map<net.Socket, { server: net.Server; webSocket: boolean }>();
let goingAway = false;

/** Starts following a server's HTTP/2 sessions and upgrades; called once per server, by track(), for all its listens. */
export function trackLongLived(server: net.Server): void {
  server.on('session' as 'connection', ((session: Http2Session) => {
    let open = sessions.get(server);
    if (!open) sessions.set(server, (open = new Set()));
    open.add(session);
    session.once('close', () => open.delete(session));
    // A connection accepted just before the drain began.
    if (goingAway) session.close();
  }) as never);
  // Every close (a server may listen again, and is followed once).
  server.on('close', () => sessions.delete(server));
  followUpgrades(server);
}

/**
 * Records each upgraded connection with a listener of our own on 'upgrade', there only while the
 * app has one: Node destroys (or, since 24.9, may answer as a request) an upgrade that nobody
 * listens for, and a listener of ours alone would change that.
 */
function followUpgrades(server: net.Server): void {
  const record = (request: http.IncomingMessage, socket: net.Socket): void => {
    if (upgrades.has(socket) || socket.destroyed) return;
    upgrades.set(socket, { server, webSocket: String(request.headers.upgrade).toLowerCase() === 'websocket' });
    socket.once('close', () => upgrades.delete(socket));
  };
  let hooked = false;
  const hook = (): void => {
    if (hooked) return;
    hooked = true;
    server.prependListener('upgrade' as 'connection', record as never);
  };
  server.on('newListener', (event: string | symbol, listener: unknown) => {
    if (event === 'upgrade' && listener !== record) hook();
  });
  server.on('removeListener', (event: string | symbol, listener: unknown) => {
    if (event !== 'upgrade') return;
    if (listener === record) hooked = false;
    else if (hooked && server.listenerCount('upgrade') === 1) server.off('upgrade' as 'connection', record as never);
  });
  if (server.listenerCount('upgrade') > 0) hook();
}

/** GOAWAY to every HTTP/2 session (and to any that starts from now on): each closes once its streams are done. */
export function closeSessions(server?: net.Server): void {
  if (server === undefined) goingAway = true;
  for (const [owner, open] of sessions) {
    if (server !== undefined && owner !== server) continue;
    for (const session of open) if (!session.closed) session.close();
  }
}

/** A server's open HTTP/2 sessions, WebSockets and other upgraded connections. */
export function longLivedOf(server: net.Server): { sessions: number; webSockets: number; upgraded: number } {
  let webSockets = 0;
  let upgraded = 0;
  for (const upgrade of upgrades.values()) {
    if (upgrade.server !== server) continue;
    if (upgrade.webSocket) webSockets++;
    else upgraded++;
  }
  return { sessions: sessions.get(server)?.size ?? 0, webSockets, upgraded };
}
