// The open-loop generator's HTTP/1.1: requests formatted once into buffers, and the least parser that
// reads our own server's answers (scripts/bench/apps/server.cjs always sends content-length). One
// request is in flight per connection, so a response is complete when its body is, and any byte past
// it is a protocol error rather than the start of the next response. It also reads whether the server
// keeps the connection: `Connection: close` (clusterd's fair mode sends it to move a keep-alive client
// to another worker), or HTTP/1.0 without `Connection: keep-alive`; a client must not send on it again.

/** The bytes of `GET <path>`; without keep-alive the request asks the server to close after answering. */
export function requestBytes(path: string, { host, keepAlive }: { host: string; keepAlive: boolean }): Buffer {
  return Buffer.from(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${keepAlive ? '' : 'Connection: close\r\n'}\r\n`, 'latin1');
}

/** A response the parser cannot read: the connection is unusable and the request counts as a read error. */
export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

/** Headers longer than this are not from our server. */
const MAX_HEAD = 16 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})/;
const CONNECTION = /\r\nconnection:([^\r]*)/gi;
const CONTENT_LENGTH = /\r\ncontent-length:[ \t]*(\d+)[ \t]*(?=\r\n|$)/i;
const CHUNKED = /\r\ntransfer-encoding:[^\r]*chunked/i;

/** Reads one response at a time from a connection's chunks. */
export class ResponseParser {
  /** Header bytes seen so far, when the head spans chunks. */
  private partial: Buffer | undefined;
  /** Body bytes still to come; -1 while reading the head, Infinity for a body that ends at close. */
  private remaining = -1;
  private status = 0;
  private closing = false;

  /** The response last completed said the server closes the connection after it: do not reuse it. */
  get closes(): boolean {
    return this.closing;
  }

  /** True between the first byte of a response and its last. */
  get busy(): boolean {
    return this.remaining >= 0 || this.partial !== undefined;
  }

  /** Feeds one chunk; returns the status code once the whole response is in, else 0. */
  push(chunk: Buffer): number {
    let body = chunk.length;
    if (this.remaining < 0) {
      const data = this.partial ? Buffer.concat([this.partial, chunk]) : chunk;
      const end = data.indexOf(HEAD_END);
      if (end < 0) {
        if (data.length > MAX_HEAD) throw new ProtocolError(`no end of headers in ${data.length} bytes`);
        // A copy: the chunk may be a view into a read buffer the next read overwrites.
        this.partial = data === chunk ? Buffer.from(chunk) : data;
        return 0;
      }
      this.partial = undefined;
      const head = data.toString('latin1', 0, end);
      const line = STATUS_LINE.exec(head);
      if (!line) throw new ProtocolError(`not an HTTP/1 status line: ${JSON.stringify(head.slice(0, 40))}`);
      this.status = Number(line[2]);
      if (CHUNKED.test(head)) throw new ProtocolError('chunked responses are not supported (the bench server sends content-length)');
      const length = CONTENT_LENGTH.exec(head)?.[1];
      const bodiless = this.status === 204 || this.status === 304 || this.status < 200;
      this.remaining = bodiless ? 0 : length === undefined ? Infinity : Number(length);
      this.closing = closesAfter(head, line[1] === '0') || this.remaining === Infinity;
      body = data.length - end - HEAD_END.length;
    }
    if (body > this.remaining) throw new ProtocolError(`${body - this.remaining} bytes past the end of the response`);
    this.remaining -= body;
    return this.remaining === 0 ? this.finish() : 0;
  }

  /** The connection closed: returns the status if that ended a close-delimited body, else 0. */
  end(): number {
    return this.remaining === Infinity ? this.finish() : 0;
  }

  private finish(): number {
    const { status } = this;
    this.remaining = -1;
    this.status = 0;
    return status;
  }
}

/** Whether a response head ends its connection: `Connection: close`, or HTTP/1.0 without keep-alive. */
function closesAfter(head: string, http10: boolean): boolean {
  const tokens = [...head.matchAll(CONNECTION)].flatMap((match) => (match[1] ?? '').split(',').map((token) => token.trim().toLowerCase()));
  if (tokens.includes('close')) return true;
  return http10 && !tokens.includes('keep-alive');
}
