import type { IncomingMessage } from 'node:http';
import { SwitchboardError } from '@switchboard/core';

/**
 * Reads a whole request body, counting bytes as they arrive: past `limit` it stops collecting and
 * rejects with `SB_BODY_TOO_LARGE`; if the body is not complete after `timeoutMs` it rejects with
 * `SB_REQUEST_TIMEOUT`. With `drainLimit`, a body over the limit is read on and dropped, up to
 * `drainLimit` more bytes, before it rejects, so that a client that sends its whole body before
 * reading sees the answer. Used by extra routes; operation calls use the allocation-free reader of
 * `OperationRequest`.
 */
export function readBody(req: IncomingMessage, limit: number, timeoutMs: number, drainLimit = 0): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const tooLarge = () => new SwitchboardError('SB_BODY_TOO_LARGE', { detail: `The body is larger than ${limit} bytes` });
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > limit + drainLimit) {
      reject(tooLarge());
      return;
    }
    if (req.readableEnded) {
      reject(new SwitchboardError('SB_CONFIG_INVALID', { detail: 'The request body was already consumed by another middleware' }));
      return;
    }
    const chunks: Buffer[] = [];
    let received = 0;
    let over = declared !== undefined && Number(declared) > limit;
    const cleanup = (): void => {
      clearTimeout(timer);
      req.removeListener('data', onData);
      req.removeListener('end', onEnd);
      req.removeListener('error', onError);
    };
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (received > limit + drainLimit) {
        cleanup();
        chunks.length = 0;
        reject(tooLarge());
        return;
      }
      if (received > limit) {
        over = true;
        chunks.length = 0;
      }
      if (!over) chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      if (over) reject(tooLarge());
      else resolve(Buffer.concat(chunks, received));
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(new SwitchboardError('SB_ABORTED', { detail: 'The client went away', cause: error }));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(over ? tooLarge() : new SwitchboardError('SB_REQUEST_TIMEOUT', { detail: 'The request body did not arrive in time' }));
    }, timeoutMs);
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}
