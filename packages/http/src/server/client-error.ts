import type { Duplex } from 'node:stream';
import type { ErrorCode } from '@switchboard/core';
import { SwitchboardError } from '@switchboard/core';
import { PROBLEM_TYPE } from './respond.js';

/** How long a refused connection may stay half-open for the client to read the answer. */
const CLOSE_GRACE_MS = 2_000;

/** A whole HTTP/1.1 response with a problem document, closing the connection. */
function rawProblem(status: number, reason: string, code: ErrorCode, detail: string): string {
  const body = JSON.stringify(new SwitchboardError(code, { detail }).toProblem());
  return `HTTP/1.1 ${status} ${reason}\r\ncontent-type: ${PROBLEM_TYPE}\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
}

const HEADERS_TOO_LARGE = rawProblem(431, 'Request Header Fields Too Large', 'SB_HEADERS_TOO_LARGE', 'The request headers are too large');
const BODY_TOO_LARGE = rawProblem(413, 'Payload Too Large', 'SB_BODY_TOO_LARGE', 'The chunk extensions are too large');
const REQUEST_TIMEOUT = rawProblem(408, 'Request Timeout', 'SB_REQUEST_TIMEOUT', 'The request did not arrive in time');
const BAD_REQUEST = rawProblem(400, 'Bad Request', 'SB_BAD_REQUEST', 'The request is not valid HTTP/1.1');

/**
 * The server's `clientError` listener: a request Node's parser refuses before any handler sees it
 * (an unknown method, a malformed request line or header, headers over `maxHeaderSize`, a header
 * timeout) is answered with a problem document, with the status Node itself would send, and the
 * connection is closed. Without it Node answers those with an empty body.
 */
export function answerClientError(error: Error & { readonly code?: string }, socket: Duplex): void {
  // A response still being written on this connection (`_httpMessage`, Node's own link from a
  // socket to its current response) cannot be followed by another one: just close. Earlier,
  // finished responses on a kept-alive connection do not matter (Node's default answers only
  // connections that never wrote anything, so a second request on a kept-alive connection got nothing).
  const busy = (socket as Duplex & { _httpMessage?: unknown })._httpMessage;
  if (error.code === 'ECONNRESET' || !socket.writable || (busy !== undefined && busy !== null)) {
    socket.destroy();
    return;
  }
  const response =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? HEADERS_TOO_LARGE
      : error.code === 'HPE_CHUNK_EXTENSIONS_OVERFLOW'
        ? BODY_TOO_LARGE
        : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
          ? REQUEST_TIMEOUT
          : BAD_REQUEST;
  // Half-close: the client may still be sending its body; it can finish and read the answer. The
  // socket goes once the client ends too, or after a short grace period.
  socket.end(response);
  socket.resume();
  setTimeout(() => socket.destroy(), CLOSE_GRACE_MS).unref();
}
