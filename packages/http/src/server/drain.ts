import type { IncomingMessage, ServerResponse } from 'node:http';

/** Unread body bytes the server reads and throws away before it gives up on a connection. Default 1 MiB. */
export const DEFAULT_DRAIN_LIMIT = 1024 * 1024;
/** How long it waits for an unread body to end. Default 2 000 ms. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 2_000;

/**
 * Bounds what a request body nobody reads may cost. Node reads and discards such a body after the
 * answer so the connection can serve the next request, but without a bound a slow or endless body
 * holds the socket until `requestTimeout`. Once `res` is finished: if the body is already complete,
 * nothing happens; otherwise it is discarded until it ends (the connection stays reusable), and the
 * socket is destroyed as soon as more than `limit` bytes arrived or `timeoutMs` passed.
 */
export function boundUnreadBody(req: IncomingMessage, res: ServerResponse, limit: number, timeoutMs: number): void {
  if (req.complete) return;
  if (res.writableFinished) {
    discard(req, limit, timeoutMs);
    return;
  }
  res.once('finish', () => discard(req, limit, timeoutMs));
}

function discard(req: IncomingMessage, limit: number, timeoutMs: number): void {
  if (req.complete || req.socket.destroyed) return;
  let received = 0;
  const cleanup = (): void => {
    clearTimeout(timer);
    req.removeListener('data', onData);
    req.removeListener('end', cleanup);
    req.removeListener('close', cleanup);
  };
  const giveUp = (): void => {
    cleanup();
    req.socket.destroy();
  };
  const onData = (chunk: Buffer): void => {
    received += chunk.length;
    if (received > limit) giveUp();
  };
  const timer = setTimeout(giveUp, timeoutMs);
  req.on('data', onData);
  req.once('end', cleanup);
  req.once('close', cleanup);
  req.resume();
}
