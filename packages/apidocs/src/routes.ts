import type { AnyContract } from '@switchboard/core';
import type { HttpRoute } from '@switchboard/http';
import { sendJson } from '@switchboard/http';
import type { AsyncApiOptions } from './asyncapi.js';
import { generateAsyncApi } from './asyncapi.js';
import type { JsonObject } from './json.js';
import type { GeneratedDocument, OpenApiOptions } from './openapi.js';
import { generateOpenApi } from './openapi.js';

export const OPENAPI_PATH = '/openapi.json';
export const ASYNCAPI_PATH = '/asyncapi.json';

export interface ApiDocumentRoutesOptions {
  /**
   * The OpenAPI document: its options, or `false` for none. Default `{}`. `basePath` defaults to
   * the serving service's.
   */
  readonly openapi?: OpenApiOptions | false;
  /** The AsyncAPI document: its options, or `false` for none. Default `{}`. */
  readonly asyncapi?: (AsyncApiOptions & { readonly contracts?: readonly AnyContract[] }) | false;
  /** Where they are served, below the service's base path. Defaults `/openapi.json`, `/asyncapi.json`. */
  readonly openapiPath?: string;
  readonly asyncapiPath?: string;
  /** Told about the warnings of each document, once, when it is first generated. Default: nothing. */
  readonly onWarnings?: (document: 'openapi' | 'asyncapi', warnings: GeneratedDocument['warnings']) => void;
}

/**
 * `GET {base}/openapi.json` and `GET {base}/asyncapi.json`: a service serves its own documents,
 * generated from its contract the first time they are asked for and kept. Pass them to
 * `createHttpService({ routes })`. The OpenAPI document lists both paths.
 */
export function apiDocumentRoutes(contract: AnyContract, options: ApiDocumentRoutesOptions = {}): HttpRoute[] {
  const openapiPath = options.openapiPath ?? OPENAPI_PATH;
  const asyncapiPath = options.asyncapiPath ?? ASYNCAPI_PATH;
  const routes: HttpRoute[] = [];
  const served = {
    ...(options.openapi === false ? {} : { openapi: openapiPath }),
    ...(options.asyncapi === false ? {} : { asyncapi: asyncapiPath }),
  };
  const route = (path: string, kind: 'openapi' | 'asyncapi', generate: (basePath: string) => Promise<GeneratedDocument>): HttpRoute => {
    let body: Promise<JsonObject> | undefined;
    return {
      methods: ['GET', 'HEAD'],
      path,
      async handle(req, res, context) {
        body ??= generate(context.service.basePath).then(({ document, warnings }) => {
          if (warnings.length > 0) options.onWarnings?.(kind, warnings);
          return document;
        });
        // A failed generation is not kept: the next request tries again.
        const document = await body.catch((error: unknown) => {
          body = undefined;
          throw error;
        });
        if (req.method === 'HEAD') {
          res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache' }).end();
          return;
        }
        sendJson(res, 200, document, { 'cache-control': 'no-cache' });
      },
    };
  };
  if (options.openapi !== false) {
    const openapi = options.openapi ?? {};
    routes.push(route(openapiPath, 'openapi', (basePath) => generateOpenApi(contract, { basePath, ...openapi, documents: served })));
  }
  if (options.asyncapi !== false) {
    const { contracts, ...asyncapi } = options.asyncapi ?? {};
    routes.push(route(asyncapiPath, 'asyncapi', () => generateAsyncApi(contracts ?? [contract], asyncapi)));
  }
  return routes;
}
