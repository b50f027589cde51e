import type { AnyContract } from '@switchboard/core';
import type { AuthGate, HttpRoute, HttpService } from '@switchboard/http';
import { sendJson } from '@switchboard/http';
import type { AsyncApiOptions } from './asyncapi.js';
import { generateAsyncApi } from './asyncapi.js';
import type { JsonObject } from './json.js';
import type { GeneratedDocument, OpenApiAuth, OpenApiOptions } from './openapi.js';
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
  /**
   * Serve the documents without authentication when the service has it. Default false: they need
   * an authenticated principal, like every other route.
   */
  readonly public?: boolean;
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
  const route = (path: string, kind: 'openapi' | 'asyncapi', generate: (service: HttpService) => Promise<GeneratedDocument>): HttpRoute => {
    let body: Promise<JsonObject> | undefined;
    return {
      methods: ['GET', 'HEAD'],
      path,
      ...(options.public === true ? { public: true } : {}),
      async handle(req, res, context) {
        body ??= generate(context.service).then(({ document, warnings }) => {
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
    routes.push(
      route(openapiPath, 'openapi', (service) =>
        generateOpenApi(contract, {
          basePath: service.basePath,
          ...(service.auth === undefined ? {} : { auth: serviceAuth(service.auth) }),
          ...openapi,
          documents: served,
        }),
      ),
    );
  }
  if (options.asyncapi !== false) {
    const { contracts, ...asyncapi } = options.asyncapi ?? {};
    routes.push(route(asyncapiPath, 'asyncapi', () => generateAsyncApi(contracts ?? [contract], asyncapi)));
  }
  return routes;
}

/** The security schemes and operation scopes of a service's authentication, as the OpenAPI document states them. */
function serviceAuth(gate: AuthGate): OpenApiAuth {
  return {
    ...(gate.schemes.includes('bearer') ? { bearer: true } : {}),
    ...(gate.schemes.includes('mutualTLS') ? { mutualTLS: true } : {}),
    scopes: Object.fromEntries(gate.operationScopes),
  };
}
