import type { IncomingMessage } from 'node:http';
import { SwitchboardError } from '@switchboard/core';

/**
 * Reads a whole request body, counting bytes as they arrive: past `limit` it stops collecting and
 * rejects with `SB_BODY_TOO_LARGE`; if the body is not complete after `timeoutMs` it rejects with
 * `SB_REQUEST_TIMEOUT`. Used by extra routes; operation calls use the allocation-free reader of
 * `OperationRequest`.
 */
export function readBody(req: IncomingMessage, limit: number, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > limit) {
      reject(new SwitchboardError('SB_BODY_TOO_LARGE', { detail: `The body is larger than ${limit} bytes` }));
      return;
    }
    if (req.readableEnded) {
      reject(new SwitchboardError('SB_CONFIG_INVALID', { detail: 'The request body was already consumed by another middleware' }));
      return;
    }
    const chunks: Buffer[] = [];
    let received = 0;
    const cleanup = (): void => {
      clearTimeout(timer);
      req.removeListener('data', onData);
      req.removeListener('end', onEnd);
      req.removeListener('error', onError);
    };
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (received > limit) {
        cleanup();
        chunks.length = 0;
        reject(new SwitchboardError('SB_BODY_TOO_LARGE', { detail: `The body is larger than ${limit} bytes` }));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks, received));
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(new SwitchboardError('SB_ABORTED', { detail: 'The client went away', cause: error }));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new SwitchboardError('SB_REQUEST_TIMEOUT', { detail: 'The request body did not arrive in time' }));
    }, timeoutMs);
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}
