import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on a loopback port in front of a broker, under the suite's control.
 *
 * - `latency(ms)`: every chunk, both ways, is held `ms` before it is forwarded (order kept).
 * - `partition()`: nothing is forwarded any more, both ways, and nothing is closed: bytes are
 *   held, as the network holds nothing and TCP keeps retransmitting; new connections are accepted
 *   by the kernel but never reach the broker. What a peer sees is what it sees when the link
 *   drops packets silently: no RST, no FIN, only silence, until its own heartbeat or timeout gives
 *   up on the connection. `heal()` forwards what was held (TCP's retransmissions arriving) and
 *   connects the connections accepted meanwhile. A partition shorter than TCP's retransmission
 *   limit (minutes) looks like this on the wire; the proxy needs no root and touches no other
 *   process's traffic, which network namespaces or firewall rules on the shared loopback would.
 */
export class FaultProxy {
  readonly #target: number;
  #server: Server | undefined;
  #latencyMs = 0;
  #partitioned = false;
  readonly #waiting: (() => void)[] = [];
  readonly #sockets = new Set<Socket>();
  port = 0;

  constructor(targetPort: number) {
    this.#target = targetPort;
  }

  async start(): Promise<void> {
    const server = createServer((client) => this.#accept(client));
    this.#server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    this.port = typeof address === 'object' && address ? address.port : 0;
  }

  latency(ms: number): void {
    this.#latencyMs = ms;
  }

  partition(): void {
    this.#partitioned = true;
  }

  heal(): void {
    this.#partitioned = false;
    for (const resume of this.#waiting.splice(0)) resume();
  }

  /** Calls `f` now, or once the partition healed. */
  #whenConnected(f: () => void): void {
    if (this.#partitioned) this.#waiting.push(f);
    else f();
  }

  #accept(client: Socket): void {
    this.#sockets.add(client);
    client.on('close', () => this.#sockets.delete(client));
    client.on('error', () => {});
    client.pause();
    this.#whenConnected(() => {
      const upstream = createConnection({ host: '127.0.0.1', port: this.#target });
      this.#sockets.add(upstream);
      upstream.on('close', () => {
        this.#sockets.delete(upstream);
        client.destroy();
      });
      upstream.on('error', () => {});
      client.on('close', () => upstream.destroy());
      this.#pipe(client, upstream);
      this.#pipe(upstream, client);
      client.resume();
    });
  }

  /** Forwards `from` → `to` in order, through the latency and partition gates. */
  #pipe(from: Socket, to: Socket): void {
    let chain = Promise.resolve();
    from.on('data', (chunk: Buffer) => {
      const at = Date.now() + this.#latencyMs;
      chain = chain.then(async () => {
        const wait = at - Date.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        if (this.#partitioned) await new Promise<void>((resolve) => this.#waiting.push(resolve));
        if (!to.destroyed) to.write(chunk);
      });
    });
  }

  async close(): Promise<void> {
    this.heal();
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }
}
