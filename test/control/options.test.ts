// Parsing of the control plane's command-line values, and the small pure rules of the service.
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bearerToken, tokenMatches } from '../../src/control/auth.js';
import * as grpc from '@grpc/grpc-js';
import { DEFAULT_WATCH_INTERVAL_MS, watchInterval } from '../../src/control/requests.js';
import { formatControlAddress, parseControlAddress, parseListenAddress, readControlToken } from '../../src/control/options.js';
import { nameOfSocket, runtimeDir, socketPath } from '../../src/control/paths.js';
import { ClusterdError, UsageError } from '../../src/errors.js';
import { tempDir } from './helpers/dirs.js';

const addresses: [string, { host: string; port: number }][] = [
  ['127.0.0.1:7070', { host: '127.0.0.1', port: 7070 }],
  ['localhost:0', { host: 'localhost', port: 0 }],
  ['[::1]:7070', { host: '::1', port: 7070 }],
  [' 10.0.0.2:65535 ', { host: '10.0.0.2', port: 65_535 }],
];
for (const [text, address] of addresses) {
  test(`--control ${text.trim()} parses`, (t) => {
    t.deepEqual(parseControlAddress(text), address);
    t.is(formatControlAddress(address), text.trim());
  });
}

for (const text of ['7070', 'host', 'host:', ':7070', 'host:65536', '::1:7070', 'host:-1', 'host:70x']) {
  test(`--control ${JSON.stringify(text)} is refused, naming the option and the value`, (t) => {
    const error = t.throws(() => parseControlAddress(text), { instanceOf: UsageError });
    t.is(error.message, `Expected \`--control\` to be HOST:PORT, such as 127.0.0.1:7070 or [::1]:7070, got \`${text}\``);
  });
}

test('the token comes from the flag, the file (without its newline), or the environment', (t) => {
  const file = join(tempDir(t), 'token');
  writeFileSync(file, 's3cret\n');
  t.is(readControlToken({ token: 'abc', env: {} }), 'abc');
  t.is(readControlToken({ tokenFile: file, env: {} }), 's3cret');
  t.is(readControlToken({ env: { CLUSTERD_CONTROL_TOKEN: 'from-env' } }), 'from-env');
  t.is(readControlToken({ token: 'flag', env: { CLUSTERD_CONTROL_TOKEN: 'from-env' } }), 'flag');
});

test('a missing, empty, unreadable or doubly given token is refused', (t) => {
  const dir = tempDir(t);
  const empty = join(dir, 'empty');
  writeFileSync(empty, '\n');
  t.throws(() => readControlToken({ env: {} }), { instanceOf: UsageError, message: /needs a token/ });
  t.throws(() => readControlToken({ token: '', env: {} }), { instanceOf: UsageError, message: /non-empty/ });
  t.throws(() => readControlToken({ tokenFile: empty, env: {} }), { instanceOf: UsageError, message: /the token file/ });
  t.throws(() => readControlToken({ tokenFile: join(dir, 'nope'), env: {} }), { instanceOf: UsageError, message: /ENOENT/ });
  t.throws(() => readControlToken({ token: 'a', tokenFile: empty, env: {} }), { instanceOf: UsageError, message: /got both/ });
  t.throws(() => readControlToken({ token: 'tök', env: {} }), { instanceOf: UsageError, message: /printable ASCII/ });
  // A header value loses its spaces at either end on the way: such a token could never be matched.
  for (const token of ['tok ', ' tok', ' ', '\ttok']) {
    t.throws(() => readControlToken({ token, env: {} }), { instanceOf: UsageError, message: /without leading or trailing spaces/ }, JSON.stringify(token));
  }
  t.is(readControlToken({ token: 'two words', env: {} }), 'two words');
});

test('bearerToken: the scheme in any case (RFC 9110), the token as sent', (t) => {
  const withAuthorization = (value: string): grpc.Metadata => {
    const metadata = new grpc.Metadata();
    metadata.set('authorization', value);
    return metadata;
  };
  t.is(bearerToken(withAuthorization('Bearer s3cret')), 's3cret');
  t.is(bearerToken(withAuthorization('bearer s3cret')), 's3cret');
  t.is(bearerToken(withAuthorization('BEARER S3cret')), 'S3cret');
  t.is(bearerToken(withAuthorization('Basic s3cret')), null);
  t.is(bearerToken(new grpc.Metadata()), null);
});

test('tokens compare equal only when identical', (t) => {
  t.true(tokenMatches('s3cret', 's3cret'));
  t.false(tokenMatches('s3cret', 's3cre'));
  t.false(tokenMatches('s3cret', 's3cret '));
  t.false(tokenMatches('s3cret', ''));
});

test('watch intervals: 0 means the default, others are clamped to 50 ms..60 s', (t) => {
  t.is(watchInterval(0), DEFAULT_WATCH_INTERVAL_MS);
  t.is(watchInterval(Number.NaN), DEFAULT_WATCH_INTERVAL_MS);
  t.is(watchInterval(1), 50);
  t.is(watchInterval(1000), 1000);
  t.is(watchInterval(10 ** 9), 60_000);
});

test('runtime directory: CLUSTERD_RUNTIME_DIR, else XDG_RUNTIME_DIR/clusterd when writable, else tmp/clusterd-<uid>', (t) => {
  const dir = tempDir(t);
  t.is(runtimeDir({ CLUSTERD_RUNTIME_DIR: dir, XDG_RUNTIME_DIR: '/nowhere' }), dir);
  t.is(runtimeDir({ XDG_RUNTIME_DIR: dir }), join(dir, 'clusterd'));
  t.regex(runtimeDir({ XDG_RUNTIME_DIR: join(dir, 'missing') }), new RegExp(`clusterd-${process.getuid!()}$`));
  t.regex(runtimeDir({}), new RegExp(`clusterd-${process.getuid!()}$`));
});

test('socket names: <name>.sock, nothing else counts, and too long a path is refused', (t) => {
  t.is(socketPath('api', '/run/x'), '/run/x/api.sock');
  t.is(nameOfSocket('api.sock'), 'api');
  t.is(nameOfSocket('.1234-abcd.sock'), null);
  t.is(nameOfSocket('api.log'), null);
  const error = t.throws(() => socketPath('a'.repeat(64), `/tmp/${'d'.repeat(60)}`), { instanceOf: ClusterdError });
  t.regex(error.message, /longer than unix sockets allow/);
});

test('--dashboard and --listen: HOST:PORT, a bare PORT on 127.0.0.1, or a socket path from cwd', (t) => {
  t.deepEqual(parseListenAddress('0.0.0.0:7071', 'dashboard'), { host: '0.0.0.0', port: 7071 });
  t.deepEqual(parseListenAddress('[::1]:0', 'dashboard'), { host: '::1', port: 0 });
  t.deepEqual(parseListenAddress('7071', 'dashboard'), { host: '127.0.0.1', port: 7071 });
  t.deepEqual(parseListenAddress('./dash.sock', 'listen', '/srv/app'), { path: '/srv/app/dash.sock' });
  t.deepEqual(parseListenAddress('dash.sock', 'listen', '/srv/app'), { path: '/srv/app/dash.sock' });
  t.deepEqual(parseListenAddress('/run/app/d', 'listen', '/srv/app'), { path: '/run/app/d' });
  for (const bad of ['localhost', 'host:port', '']) {
    t.throws(() => parseListenAddress(bad, 'dashboard'), { instanceOf: UsageError, message: /^Expected `--dashboard` to be HOST:PORT/ }, bad);
  }
  // A bare port past 65535 is named as the user typed it.
  t.throws(() => parseListenAddress('70710', 'dashboard'), { instanceOf: UsageError, message: "Expected `--dashboard`'s port to be from 0 to 65535, got `70710`" });
  t.throws(() => parseListenAddress('/run/app/', 'listen'), { instanceOf: UsageError, message: /not a directory/ });
  t.throws(() => parseListenAddress(`/${'x'.repeat(120)}.sock`, 'listen'), { instanceOf: UsageError, message: /at most 107 bytes/ });
});
