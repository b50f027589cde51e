// A minimal peer that speaks the wire protocol with plain node:http, so the client is tested
// against something that is not Switchboard's own server.
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { defineContract, operation } from '@switchboard/core';
import { z } from 'zod';

export const accounts = defineContract({
  name: 'accounts',
  operations: {
    save: operation({
      input: z.strictObject({ name: z.string().min(1), tags: z.array(z.string()).default([]) }),
      output: z.object({ id: z.string(), name: z.string() }),
      errors: {
        NameTaken: { status: 409, data: z.object({ existing: z.string() }) },
        Busy: { status: 423, retryable: true },
      },
    }),
    get: operation({
      input: z.object({ id: z.string() }),
      output: z.object({ id: z.string(), name: z.string(), createdAt: z.string().transform((value) => new Date(value)) }),
      idempotent: true,
    }),
  },
});

export interface Received {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /** Resolves when the client closed the connection before an answer was written. */
  readonly abandoned: Promise<void>;
}

export type Responder = (request: Received, response: ServerResponse, index: number) => void | Promise<void>;

export interface Peer {
  readonly url: string;
  readonly received: Received[];
  close(): Promise<void>;
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

export async function startPeer(respond: Responder): Promise<Peer> {
  const received: Received[] = [];
  const server = createServer(async (request, response) => {
    const abandoned = new Promise<void>((resolve) => {
      response.on('close', () => {
        if (!response.writableFinished) resolve();
      });
    });
    const body = await readBody(request);
    const entry: Received = { method: request.method ?? '', path: request.url ?? '', headers: request.headers, body, abandoned };
    received.push(entry);
    await respond(entry, response, received.length - 1);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function sendJson(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'content-type': 'application/json', ...headers });
  response.end(JSON.stringify(body));
}

export function sendProblem(
  response: ServerResponse,
  status: number,
  problem: { code: string; [member: string]: unknown },
  headers: Record<string, string> = {},
): void {
  response.writeHead(status, { 'content-type': 'application/problem+json', ...headers });
  response.end(JSON.stringify({ type: 'about:blank', title: problem.code, status, ...problem }));
}

/** A URL on which nothing listens: connections are refused. */
export async function refusedUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}
