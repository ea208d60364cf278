// Issue 11: every message a worker sends is parsed, not cast. One case per malformed shape of each
// member of the protocol union, and the well-formed ones the runtime really sends.
import test from 'ava';
import { parseWorkerMessage } from '../../src/protocol/parse.js';
import { sample } from '../control/helpers/fake-source.js';

const query = { key: '127.0.0.1:0:4::0', address: '127.0.0.1', port: 0, addressType: 4, flags: 0, backlog: 511 };

const accepted = test.macro({
  exec(t, message: unknown) {
    const parsed = parseWorkerMessage(message);
    t.true(parsed.ok, parsed.ok ? '' : parsed.error);
  },
  title: (title = '') => `accepted: ${title}`,
});

test('listen', accepted, { cmd: 'NODE_clusterd:listen', seq: 1, query });
test('listen with no backlog given (Node leaves false)', accepted, { cmd: 'NODE_clusterd:listen', seq: 1, query: { ...query, backlog: false } });
const pathQuery = { key: '/run/app.sock:-1:-1::0', address: '/run/app.sock', port: -1, addressType: -1, flags: 0, backlog: 511 };
test('listen on a unix socket path', accepted, { cmd: 'NODE_clusterd:listen', seq: 1, query: pathQuery });
test('listen on a unix socket path, readable and writable by all', accepted, { cmd: 'NODE_clusterd:listen', seq: 1, query: { ...pathQuery, readableAll: true, writableAll: true } });
const udpQuery = { key: '127.0.0.1:5353:udp4::0', address: '127.0.0.1', port: 5353, addressType: 'udp4', flags: 4 };
test('listen for UDP on a fixed port (SO_REUSEADDR asked)', accepted, { cmd: 'NODE_clusterd:listen', seq: 1, query: udpQuery });
test('listen on an abstract unix socket', accepted, { cmd: 'NODE_clusterd:listen', seq: 1, query: { ...pathQuery, key: '\0clusterd-app:-1:-1::0', address: '\0clusterd-app' } });
test('listen on any address, no backlog', accepted, { cmd: 'NODE_clusterd:listen', seq: 1, query: { ...query, key: ':0:4::3', address: null, backlog: undefined } });
test('close', accepted, { cmd: 'NODE_clusterd:close', key: query.key });
test('ack', accepted, { cmd: 'NODE_clusterd:ack', key: query.key, id: 7, accepted: false, connections: 3 });
test('full', accepted, { cmd: 'NODE_clusterd:full', key: query.key, epoch: 2, connections: 34, ceiling: null });
test('full at the server\'s own maxConnections', accepted, { cmd: 'NODE_clusterd:full', key: query.key, epoch: 2, connections: 3, ceiling: 3 });
test('under', accepted, { cmd: 'NODE_clusterd:under', key: query.key, epoch: 2, connections: 31, peak: 34, low: 0, accepted: 120, closed: 118 });
test('lagging', accepted, { cmd: 'NODE_clusterd:lagging', key: query.key, epoch: 2, connections: 3, lagging: true });
test('load', accepted, { cmd: 'NODE_clusterd:load', key: query.key, connections: 3, peak: 9, low: 0, accepted: 9, closed: 6 });
test('ready', accepted, { cmd: 'NODE_clusterd:ready' });
test('listening (every server closed)', accepted, { cmd: 'NODE_clusterd:listening', listening: false });
test('listening again', accepted, { cmd: 'NODE_clusterd:listening', listening: true });
test('stats', accepted, { cmd: 'NODE_clusterd:stats', sample: sample() });
test('stats without uv metrics (Node < 20.18)', accepted, { cmd: 'NODE_clusterd:stats', sample: { ...sample(), loop: null } });
const open = { requests: 1, receiving: 0, idle: 0, webSockets: 2, upgraded: 0, http2Sessions: 1, other: 0, handlers: 1 };
test('draining', accepted, { cmd: 'NODE_clusterd:draining', open, appExits: true });
test('own-listen (exclusive: true)', accepted, { cmd: 'NODE_clusterd:own-listen', id: 1, address: null, port: 3000, sockname: { address: '::', family: 'IPv6', port: 3000 }, error: null });
test('own-listen on a host, bound to its IPv4 address', accepted, { cmd: 'NODE_clusterd:own-listen', id: 1, address: 'localhost', port: 3000, sockname: { address: '127.0.0.1', family: 'IPv4', port: 3000 }, error: null });
test('own-listen on a unix path', accepted, { cmd: 'NODE_clusterd:own-listen', id: 1, address: '/run/app.sock', port: -1, sockname: { address: '/run/app.sock', family: 'unix', port: -1 }, error: null });
test('own-listen on an abstract unix socket', accepted, { cmd: 'NODE_clusterd:own-listen', id: 1, address: '\0clusterd-app', port: -1, sockname: { address: '\0clusterd-app', family: 'unix', port: -1 }, error: null });
test('own-listen that failed', accepted, { cmd: 'NODE_clusterd:own-listen', id: 2, address: '/run/app.sock', port: -1, sockname: null, error: { code: 'EADDRINUSE', errno: -98 } });
test('own-close', accepted, { cmd: 'NODE_clusterd:own-close', id: 1 });
test('draining of an app that listens for the other stop signal', accepted, { cmd: 'NODE_clusterd:draining', open, appExits: false, listensFor: 'SIGINT' });

const refused = test.macro({
  exec(t, message: unknown, why: RegExp) {
    const parsed = parseWorkerMessage(message);
    t.false(parsed.ok);
    if (!parsed.ok) t.regex(parsed.error, why);
  },
  title: (title = '') => `refused: ${title}`,
});

test('listen under a key that is another address\'s (a UDP socket would answer an HTTP server\'s listen)', refused, { cmd: 'NODE_clusterd:listen', seq: 1, query: { ...udpQuery, key: '127.0.0.1:5353:4::0' } }, /query/);
test('listen on a path under a TCP address\'s key', refused, { cmd: 'NODE_clusterd:listen', seq: 1, query: { ...pathQuery, key: query.key } }, /query/);
test('listen under a key whose index is not a number', refused, { cmd: 'NODE_clusterd:listen', seq: 1, query: { ...query, key: '127.0.0.1:0:4::x' } }, /query/);
test('listen for UDP on port 0 (the worker binds its own)', refused, { cmd: 'NODE_clusterd:listen', seq: 1, query: { ...udpQuery, port: 0 } }, /query/);
test('listen for UDP with a flag Node\'s dgram never passes', refused, { cmd: 'NODE_clusterd:listen', seq: 1, query: { ...udpQuery, flags: 2 } }, /query/);
test('listen for UDP with a backlog', refused, { cmd: 'NODE_clusterd:listen', seq: 1, query: { ...udpQuery, backlog: 511 } }, /query/);

test('an unknown command', refused, { cmd: 'NODE_clusterd:format-disk' }, /cmd/);
test('listen without a query', refused, { cmd: 'NODE_clusterd:listen', seq: 1 }, /query/);
test('listen with a null query', refused, { cmd: 'NODE_clusterd:listen', seq: 1, query: null }, /query/);
test('listen without a seq', refused, { cmd: 'NODE_clusterd:listen', query }, /seq/);
test('listen on port 70000', refused, { cmd: 'NODE_clusterd:listen', seq: 1, query: { ...query, port: 70000 } }, /query\.port/);
test('listen on a unix path with a port', refused, { cmd: 'NODE_clusterd:listen', seq: 1, query: { ...query, addressType: -1 } }, /query/);
test('listen on a relative unix path (the worker resolves it)', refused, { cmd: 'NODE_clusterd:listen', seq: 1, query: { ...pathQuery, address: 'app.sock' } }, /query\.address/);
test('listen on a unix path with a NUL inside', refused, { cmd: 'NODE_clusterd:listen', seq: 1, query: { ...pathQuery, address: '/run/app\0.sock' } }, /query\.address/);
test('listen on a unix path longer than sun_path', refused, { cmd: 'NODE_clusterd:listen', seq: 1, query: { ...pathQuery, address: `/${'a'.repeat(107)}` } }, /query\.address/);
test('listen on a unix path with a mode that is not a boolean', refused, { cmd: 'NODE_clusterd:listen', seq: 1, query: { ...pathQuery, readableAll: 'yes' } }, /query/);
test('a TCP listen with a socket mode', refused, { cmd: 'NODE_clusterd:listen', seq: 1, query: { ...query, readableAll: true } }, /query/);
test('listen on one of the master\'s descriptors', refused, { cmd: 'NODE_clusterd:listen', seq: 1, query: { ...query, fd: 3 } }, /query/);
test('listen with a key of 10,000 characters', refused, { cmd: 'NODE_clusterd:listen', seq: 1, query: { ...query, key: 'k'.repeat(10_000) } }, /query\.key/);
test('close without a key', refused, { cmd: 'NODE_clusterd:close' }, /key/);
test('ack with a string id', refused, { cmd: 'NODE_clusterd:ack', key: query.key, id: '7', accepted: true, connections: 1 }, /id/);
test('ack with negative connections', refused, { cmd: 'NODE_clusterd:ack', key: query.key, id: 7, accepted: true, connections: -1 }, /connections/);
test('full without an epoch', refused, { cmd: 'NODE_clusterd:full', key: query.key, connections: 3, ceiling: null }, /epoch/);
test('full with a ceiling that is not a count', refused, { cmd: 'NODE_clusterd:full', key: query.key, epoch: 2, connections: 3, ceiling: -1 }, /ceiling/);
test('under with NaN connections', refused, { cmd: 'NODE_clusterd:under', key: query.key, epoch: 1, connections: Number.NaN, peak: 34, low: 0, accepted: 1, closed: 1 }, /connections/);
test('under without its load', refused, { cmd: 'NODE_clusterd:under', key: query.key, epoch: 1, connections: 31 }, /peak/);
test('lagging without its flag', refused, { cmd: 'NODE_clusterd:lagging', key: query.key, epoch: 1, connections: 3 }, /lagging/);
test('lagging with a string for its flag', refused, { cmd: 'NODE_clusterd:lagging', key: query.key, epoch: 1, connections: 3, lagging: 'yes' }, /lagging/);
test('under with a negative closed count', refused, { cmd: 'NODE_clusterd:under', key: query.key, epoch: 1, connections: 31, peak: 34, low: 0, accepted: 1, closed: -1 }, /closed/);
test('load with a fractional peak', refused, { cmd: 'NODE_clusterd:load', key: query.key, connections: 1, peak: 1.5, low: 0, accepted: 0, closed: 0 }, /peak/);
test('stats with an empty sample', refused, { cmd: 'NODE_clusterd:stats', sample: {} }, /sample\./);
test('stats without a sample', refused, { cmd: 'NODE_clusterd:stats' }, /sample/);
test('stats with a string lag', refused, { cmd: 'NODE_clusterd:stats', sample: { ...sample(), lag: { ...sample().lag, p99: '190' } } }, /sample\.lag\.p99/);
test('stats with an infinite rss', refused, { cmd: 'NODE_clusterd:stats', sample: { ...sample(), memory: { ...sample().memory, rss: Infinity } } }, /sample\.memory\.rss/);
test('stats with utilisation past 1', refused, { cmd: 'NODE_clusterd:stats', sample: { ...sample(), elu: 3 } }, /sample\.elu/);
test('stats with a fractional resource count', refused, { cmd: 'NODE_clusterd:stats', sample: { ...sample(), resources: { Timeout: 0.5 } } }, /sample\.resources/);
test('draining naming a signal that is not a stop signal', refused, { cmd: 'NODE_clusterd:draining', open, appExits: false, listensFor: 'SIGKILL' }, /listensFor/);
test('draining without appExits', refused, { cmd: 'NODE_clusterd:draining', open }, /appExits/);
test('draining with a negative count', refused, { cmd: 'NODE_clusterd:draining', open: { ...open, webSockets: -1 }, appExits: false }, /open\.webSockets/);
test('draining with a count missing', refused, { cmd: 'NODE_clusterd:draining', open: { ...open, handlers: undefined }, appExits: false }, /open\.handlers/);
test('draining with a kind the runtime does not count', refused, { cmd: 'NODE_clusterd:draining', open: { ...open, sockets: 3 }, appExits: false }, /open|Unrecognized/i);
test('an extra field (a message the runtime never sends)', refused, { cmd: 'NODE_clusterd:ready', extra: 1 }, /extra|Unrecognized/i);
test('listening without its flag', refused, { cmd: 'NODE_clusterd:listening' }, /listening/);
test('listening with a string for its flag', refused, { cmd: 'NODE_clusterd:listening', listening: 'no' }, /listening/);
test('own-listen with a port out of range', refused, { cmd: 'NODE_clusterd:own-listen', id: 1, address: null, port: 70000, sockname: null, error: null }, /port/);
const ownListen = { cmd: 'NODE_clusterd:own-listen', id: 1, address: '127.0.0.1', port: 3000, sockname: { address: '127.0.0.1', family: 'IPv4', port: 3000 }, error: null };
const ownPath = { cmd: 'NODE_clusterd:own-listen', id: 1, address: '/run/app.sock', port: -1, sockname: { address: '/run/app.sock', family: 'unix', port: -1 }, error: null };
test('own-listen on a unix path whose address is no path (the master lists it)', refused, { ...ownPath, address: 'evil\nready on 0.0.0.0:80', sockname: null }, /address/);
test('own-listen on a relative unix path', refused, { ...ownPath, address: 'app.sock', sockname: { ...ownPath.sockname, address: 'app.sock' } }, /address/);
test('own-listen on a unix path bound to another path', refused, { ...ownPath, sockname: { ...ownPath.sockname, address: '/run/other.sock' } }, /address|path/);
test('own-listen on a unix path with a line break and escapes in it (the ready line, status and a failed boot repeat it)', refused, { ...ownPath, address: '/tmp/evil\nclusterd: stopped\u001b[31m', sockname: null, error: { code: 'EADDRINUSE', errno: -98 } }, /control characters/);
test('own-listen on a host that is no host name', refused, { ...ownListen, address: 'evil host, 127.0.0.1', sockname: null, error: { code: 'EADDRINUSE', errno: -98 } }, /host name/);
test('own-listen whose error code is no errno name', refused, { ...ownListen, sockname: null, error: { code: 'E\u001b]0;pwned\u0007', errno: -98 } }, /code/);
test('own-listen with a family that is no family', refused, { ...ownListen, sockname: { ...ownListen.sockname, family: 'IPv9' } }, /family/);
test('own-listen on a unix path with a TCP family', refused, { ...ownPath, sockname: { ...ownPath.sockname, family: 'IPv4' } }, /family|sockname/);
test('own-listen bound to an address that is no IP', refused, { ...ownListen, sockname: { ...ownListen.sockname, address: 'a\nb' } }, /IP|address/);
test('own-listen bound to an IPv6 address called IPv4', refused, { ...ownListen, sockname: { address: '::1', family: 'IPv4', port: 3000 } }, /IP|address/);
test('own-listen bound to another port than the one asked for', refused, { ...ownListen, sockname: { ...ownListen.sockname, port: 3001 } }, /port/);
test('own-listen on port 0 (each worker has a port of its own: never reported)', refused, { ...ownListen, port: 0, sockname: { ...ownListen.sockname, port: 0 } }, /port/);
test('not an object', refused, 'NODE_clusterd:ready', /object|cmd|Invalid/i);
