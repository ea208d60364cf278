// One listening socket serving the Control service. The net.Server is ours and hands each
// connection to grpc-js through its connection injector, for two reasons:
// - close() must end every connection. With grpc-js 1.14, tryShutdown() then forceShutdown()
//   left a connection that had sent nothing open, and tryShutdown's callback pending, for good
//   (test/control/server.test.ts has the case); so what is left after the grace is destroyed here.
// - The listener's limits are ours to set. On the unix socket (its owner only), maxConnections
//   bounds what a runaway script can cost the master. On TCP a cap that refuses newcomers is
//   what a flood of idle connections fills, locking out the token holder: there a ConnectionGuard
//   (guard.ts) bounds the unauthenticated connections instead, evicting old ones for new ones.
import * as grpc from '@grpc/grpc-js';
import { createServer, type AddressInfo, type ListenOptions, type Server, type Socket } from 'node:net';
import type { ConnectionGuard } from './guard.js';

/** Connections the unix listener accepts at once; `top` watchers and scripts need a handful. */
export const MAX_CONNECTIONS = 128;

export class GrpcListener {
  readonly #grpc: grpc.Server;
  readonly #injector: grpc.ConnectionInjector;
  readonly #net: Server;
  readonly #sockets = new Set<Socket>();

  constructor({ definition, implementation, interceptors = [], guard }: {
    definition: grpc.ServiceDefinition;
    implementation: grpc.UntypedServiceImplementation;
    interceptors?: grpc.ServerInterceptor[];
    /** Admits each connection (TCP); without one, at most MAX_CONNECTIONS are accepted. */
    guard?: ConnectionGuard | undefined;
  }) {
    this.#grpc = new grpc.Server({ interceptors });
    this.#grpc.addService(definition, implementation);
    this.#injector = this.#grpc.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    this.#net = createServer((socket) => {
      if (guard && !guard.admit(socket)) return;
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
      this.#injector.injectConnection(socket);
    });
    if (!guard) this.#net.maxConnections = MAX_CONNECTIONS;
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
   * connection still open. Resolves once grpc-js has let go of all of them.
   */
  close(graceMs: number): Promise<void> {
    this.#net.close(() => {});
    return new Promise((resolve) => {
      const force = setTimeout(() => {
        for (const socket of this.#sockets) socket.destroy();
        this.#grpc.forceShutdown();
      }, graceMs);
      force.unref();
      this.#grpc.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }
}
