import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import { Duplex } from 'node:stream';
import { SwitchboardError } from '@switchboard/core';
import type { Dispatcher } from 'undici';
import { Agent } from 'undici';

/**
 * HTTP between the services of a testbed without sockets or ports: an undici `Agent` whose
 * connector hands out one end of an in-memory duplex pair, while the other end is given to a
 * `node:http` server that never listens (`server.emit('connection', stream)`, which Node documents
 * for any `Duplex`). Both sides are the real ones — undici's HTTP/1.1 client and Node's HTTP
 * parser — so requests and responses stream (long-polls, server-sent events, aborts) exactly as on
 * a socket; only the kernel is left out.
 */
export interface VirtualNetwork {
  /** Sends to every host mounted here; pass it as `dispatcher` to any Switchboard client or undici call. */
  readonly dispatcher: Dispatcher;
  /** Serves `host` with `listener` (a service's `handle`); answers its base URL, `http://<host>`. */
  mount(host: string, listener: RequestListener): string;
  /** Stops serving `host`: open connections are cut, new ones refused (`ECONNREFUSED`). */
  unmount(host: string): void;
  /** Connections opened so far (each is a duplex pair). */
  readonly connections: number;
  close(): Promise<void>;
}

/** A host name becomes `<name>.test` unless it already has a dot (RFC 2606 reserves `.test`). */
export function virtualHost(name: string): string {
  const host = name.toLowerCase().replace(/[^a-z0-9.-]+/g, '-');
  return host.includes('.') ? host : `${host}.test`;
}

interface Mounted {
  readonly server: Server;
  readonly streams: Set<Duplex>;
}

/** A socket-like end of an in-memory pipe: what undici and `node:http` call on a socket, as no-ops. */
class PipeEnd extends Duplex {
  peer: PipeEnd | undefined;
  readonly remoteAddress = '127.0.0.1';
  readonly remotePort = 0;
  readonly remoteFamily = 'IPv4';
  readonly localAddress = '127.0.0.1';
  readonly localPort = 80;
  readonly encrypted = false;
  readonly connecting = false;

  override _read(): void {}

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const peer = this.peer;
    if (peer === undefined || peer.destroyed) {
      callback(Object.assign(new Error('The other end of the pipe is closed'), { code: 'EPIPE' }));
      return;
    }
    peer.push(chunk);
    callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.peer?.push(null);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const peer = this.peer;
    if (peer !== undefined && !peer.destroyed) {
      // The other side sees the connection end, as with a socket reset.
      peer.push(null);
      peer.destroy();
    }
    callback(error);
  }

  setTimeout(_ms: number, callback?: () => void): this {
    if (callback !== undefined) this.once('timeout', callback);
    return this;
  }
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
  address(): { address: string; family: string; port: number } {
    return { address: this.localAddress, family: 'IPv4', port: this.localPort };
  }
}

function pipePair(): [PipeEnd, PipeEnd] {
  const client = new PipeEnd();
  const server = new PipeEnd();
  client.peer = server;
  server.peer = client;
  return [client, server];
}

function refused(host: string): Error {
  return Object.assign(new Error(`connect ECONNREFUSED: nothing serves ${host} in this testbed`), { code: 'ECONNREFUSED' });
}

export function createVirtualNetwork(): VirtualNetwork {
  const hosts = new Map<string, Mounted>();
  let opened = 0;
  let closed = false;
  const agent = new Agent({
    keepAliveTimeout: 60_000,
    connect: (options, callback) => {
      const hostname = String(options.hostname).toLowerCase();
      const mounted = hosts.get(hostname);
      // undici expects the connector's callback on a later tick.
      if (closed || mounted === undefined) {
        process.nextTick(callback, refused(hostname), null);
        return;
      }
      const [client, server] = pipePair();
      opened++;
      mounted.streams.add(server);
      server.once('close', () => mounted.streams.delete(server));
      mounted.server.emit('connection', server);
      process.nextTick(callback, null, client as unknown as import('node:net').Socket);
    },
  });

  const cut = (mounted: Mounted): void => {
    for (const stream of mounted.streams) stream.destroy();
    mounted.streams.clear();
    mounted.server.closeAllConnections();
  };

  return {
    dispatcher: agent,
    get connections() {
      return opened;
    },
    mount(host, listener) {
      const name = virtualHost(host);
      if (hosts.has(name)) throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `${name} is already served in this testbed` });
      const server = createServer(listener as (req: IncomingMessage, res: ServerResponse) => void);
      // What a listening server would do with bytes that are not HTTP: a 400 and the end of the connection.
      server.on('clientError', (_error, socket) => {
        if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
        else socket.destroy();
      });
      hosts.set(name, { server, streams: new Set() });
      return `http://${name}`;
    },
    unmount(host) {
      const name = virtualHost(host);
      const mounted = hosts.get(name);
      if (mounted === undefined) return;
      hosts.delete(name);
      cut(mounted);
    },
    async close() {
      if (closed) return;
      closed = true;
      await agent.destroy().catch(() => undefined);
      for (const mounted of hosts.values()) cut(mounted);
      hosts.clear();
    },
  };
}
