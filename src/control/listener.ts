// One listening socket serving the Control service. The net.Server is ours and hands each
// connection to grpc-js through its connection injector, for two reasons:
// - close() must end every connection. With grpc-js 1.14, tryShutdown() then forceShutdown()
//   left a connection that had sent nothing open, and tryShutdown's callback pending, for good
//   (test/control/server.test.ts has the case); so what is left after the grace is destroyed here.
// - The listener's limits are ours to set. A cap that refuses newcomers is what a flood of idle
//   connections fills, locking out the operator: 128 connections that sent nothing made every
//   `clusterd stop` fail as if the cluster were not running. On the unix socket (its owner only:
//   a runaway script, a leaked channel per scrape) the oldest connection makes room for a new one;
//   on TCP a ConnectionGuard (guard.ts) bounds the unauthenticated connections the same way.
//   grpc-js closes a connection with no call in progress for CONNECTION_IDLE_MS (a client's
//   channel connects again when it next calls), and bounds the calls one connection may hold open.
import * as grpc from '@grpc/grpc-js';
import { createServer, type AddressInfo, type ListenOptions, type Server, type Socket } from 'node:net';
import type { ConnectionGuard } from './guard.js';

/** Connections the unix listener holds at once; `top` watchers and scripts need a handful. */
export const MAX_CONNECTIONS = 128;

/** A connection with no call in progress this long is closed (grpc-js: GOAWAY). */
export const CONNECTION_IDLE_MS = 60_000;

/**
 * Calls one connection may have open at once: HTTP/2 advertises it, and grpc-js refuses the stream
 * past it. Unbounded, one connection opening calls it never sent a message on held 1.5 GB of the
 * master's memory at 200,000; a CLI command makes one or two, a program on the API a few.
 */
export const MAX_CALLS_PER_CONNECTION = 100;

export class GrpcListener {
  readonly #grpc: grpc.Server;
  readonly #injector: grpc.ConnectionInjector;
  readonly #net: Server;
  readonly #sockets = new Set<Socket>();

  constructor({ definition, implementation, interceptors = [], guard }: {
    definition: grpc.ServiceDefinition;
    implementation: grpc.UntypedServiceImplementation;
    interceptors?: grpc.ServerInterceptor[];
    /** Admits each connection (TCP); without one, at most MAX_CONNECTIONS are held, the oldest closed for a newcomer. */
    guard?: ConnectionGuard | undefined;
  }) {
    this.#grpc = new grpc.Server({ interceptors, 'grpc.max_connection_idle_ms': CONNECTION_IDLE_MS, 'grpc.max_concurrent_streams': MAX_CALLS_PER_CONNECTION });
    this.#grpc.addService(definition, implementation);
    this.#injector = this.#grpc.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    this.#net = createServer((socket) => {
      if (guard && !guard.admit(socket)) return;
      if (!guard && this.#sockets.size >= MAX_CONNECTIONS) {
        // The oldest goes (a Set iterates in insertion order); forgotten now, as 'close' comes later.
        const oldest = this.#sockets.values().next().value!;
        this.#sockets.delete(oldest);
        oldest.destroy();
      }
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
      this.#injector.injectConnection(socket);
    });
  }

  /** Resolves with the bound address (a path for a unix socket). */
  listen(options: ListenOptions): Promise<AddressInfo | string> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      this.#net.once('error', onError);
      this.#net.listen(options, () => {
        this.#net.off('error', onError);
        // Errors after listening (EMFILE on accept) must not crash the master; accept goes on.
        this.#net.on('error', () => {});
        resolve(this.#net.address()!);
      });
    });
  }

  /**
   * Stops accepting, lets calls in progress finish for up to `graceMs`, then cuts every
   * connection still open. Resolves once grpc-js has let go of all of them and every
   * connection has closed.
   */
  close(graceMs: number): Promise<void> {
    this.#net.close(() => {});
    // tryShutdown's callback is not enough to exit on: on Node 24 closing grpc-js's server closes
    // its sessions first, so it finds them closed and answers at once, while the streams the master
    // has just ended still wait to send their trailers (a `logs -f` or `top` cut off by a stop saw
    // the connection drop, not the end of its stream). A session that has closed gracefully ends
    // its connection once what it wrote has gone out, so the connections closing is the sign.
    const closed = [...this.#sockets].map((socket) => new Promise((resolve) => socket.once('close', resolve)));
    return new Promise((resolve) => {
      const force = setTimeout(() => {
        for (const socket of this.#sockets) socket.destroy();
        this.#grpc.forceShutdown();
      }, graceMs);
      force.unref();
      const shutDown = new Promise<void>((done) => this.#grpc.tryShutdown(() => done()));
      void Promise.all([shutDown, ...closed]).then(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }
}
