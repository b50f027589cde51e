import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import { SwitchboardError } from '@switchboard/core';

/** The limits of the `node:http` server that `listen()` starts (see `docs/protocol.md`, "Limits"). */
export interface ServerLimits {
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  readonly maxHeadersCount: number;
  readonly maxConnections: number;
  readonly retryAfterSeconds: number;
}

export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 5_000;
export const DEFAULT_MAX_HEADERS_COUNT = 100;
export const DEFAULT_MAX_CONNECTIONS = 512;

const kConnection = Symbol('switchboard.connection');
type TrackedSocket = Socket & { [kConnection]?: NodeJS.Timeout | undefined };

function overloadedAnswer(retryAfterSeconds: number): string {
  const body = JSON.stringify(new SwitchboardError('SB_OVERLOADED', { detail: 'Too many connections' }).toProblem());
  return [
    'HTTP/1.1 503 Service Unavailable',
    'content-type: application/problem+json',
    `content-length: ${Buffer.byteLength(body)}`,
    `retry-after: ${retryAfterSeconds}`,
    'connection: close',
    '',
    body,
  ].join('\r\n');
}

/**
 * Applies `limits` to `server` and returns the number of open connections (a getter). Node's own
 * defaults are loose (60 s for headers, 300 s for a request, 2 000 headers, no connection cap, no
 * bound at all on a connection that never sends a request); these are strict:
 * - a connection must send its first request's headers within `headersTimeoutMs` (Node's
 *   `headersTimeout` only starts with the first byte, so a silent connection is closed here);
 * - past `maxConnections`, a new connection is answered `503 SB_OVERLOADED` with `Retry-After` and
 *   `Connection: close`, then closed; the connections already open are not touched.
 */
/** How often Node checks `headersTimeout` and `requestTimeout` (its default, 30 s, would let them overrun). */
export function checkingInterval(limits: ServerLimits): number {
  return Math.max(50, Math.min(1_000, Math.floor(limits.headersTimeoutMs / 4)));
}

export function applyServerLimits(server: Server, limits: ServerLimits): () => number {
  server.headersTimeout = limits.headersTimeoutMs;
  server.requestTimeout = limits.requestTimeoutMs;
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.maxHeadersCount = limits.maxHeadersCount;
  let open = 0;
  const refusal = overloadedAnswer(limits.retryAfterSeconds);
  const listeners = server.listeners('connection') as Array<(socket: Socket) => void>;
  const accept = (socket: Socket): void => {
    for (const listener of listeners) listener.call(server, socket);
  };
  server.removeAllListeners('connection');
  server.on('connection', (socket: TrackedSocket) => {
    if (open >= limits.maxConnections) {
      refuse(socket, refusal, limits.headersTimeoutMs);
      return;
    }
    open++;
    socket.once('close', () => {
      open--;
      clearTimeout(socket[kConnection]);
    });
    const timer = setTimeout(() => socket.destroy(), limits.headersTimeoutMs);
    timer.unref();
    socket[kConnection] = timer;
    accept(socket);
  });
  server.prependListener('request', (req: IncomingMessage) => {
    const socket = req.socket as TrackedSocket;
    const timer = socket[kConnection];
    if (timer !== undefined) {
      clearTimeout(timer);
      socket[kConnection] = undefined;
    }
  });
  return () => open;
}

/** Answers 503 and closes, reading (and dropping) what the client sends meanwhile so it can read the answer. */
function refuse(socket: Socket, answer: string, timeoutMs: number): void {
  socket.on('error', () => {});
  socket.on('data', () => {});
  socket.setTimeout(Math.min(timeoutMs, 2_000), () => socket.destroy());
  socket.end(answer);
}
