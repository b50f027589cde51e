import { SwitchboardError } from '@switchboard/core';
import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify';
import type { HttpService } from '../server/types.js';

export interface SwitchboardFastifyOptions {
  /** The service to mount; its `basePath` is the full path, including any `register` prefix. */
  readonly service: HttpService;
  /** Drain time given to the service when Fastify closes. Default 10 000 ms. */
  readonly closeTimeoutMs?: number;
}

const METHODS: HTTPMethods[] = ['DELETE', 'GET', 'HEAD', 'PATCH', 'POST', 'PUT', 'OPTIONS'];

/**
 * Mounts a Switchboard service on Fastify. Each matching request is hijacked and handed, raw, to
 * `service.handle`, so status codes, bodies, limits, deadlines and idempotency behave exactly as
 * on plain node:http. Fastify's own body parsing is switched off inside this plugin's scope (the
 * service streams and limits the body itself); the rest of the application is not affected.
 *
 * ```ts
 * app.register(switchboardFastify, { service });
 * ```
 */
export function switchboardFastify(instance: FastifyInstance, options: SwitchboardFastifyOptions, done: (error?: Error) => void): void {
  const { service } = options;
  const prefix = instance.prefix;
  if (!service.basePath.startsWith(prefix)) {
    done(
      new SwitchboardError('SB_CONFIG_INVALID', {
        detail: `The service basePath "${service.basePath}" must start with the plugin prefix "${prefix}"`,
      }),
    );
    return;
  }
  const base = service.basePath.slice(prefix.length);
  instance.removeAllContentTypeParsers();
  instance.addContentTypeParser('*', (_request: FastifyRequest, _payload: unknown, parsed: (error: Error | null, body?: unknown) => void) =>
    parsed(null),
  );
  const handler = (request: FastifyRequest, reply: FastifyReply): void => {
    reply.hijack();
    service.handle(request.raw, reply.raw);
  };
  const paths = [`${base}/ops/*`, `${base}/healthz`, `${base}/readyz`];
  for (const route of service.routes) paths.push(`${base}${route.path.endsWith('/') ? `${route.path}*` : route.path}`);
  for (const url of new Set(paths)) instance.route({ method: METHODS, url, handler });
  instance.addHook('preClose', async () => {
    await service.close({ timeoutMs: options.closeTimeoutMs ?? 10_000 });
  });
  done();
}
