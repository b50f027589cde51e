export { readBody } from './body.js';
export { isJsonContentType } from './content-type.js';
export type { JsonRefusal } from './json.js';
export { checkJsonDepth, DEFAULT_MAX_JSON_DEPTH, isJsonMediaType, parseJsonBody, readJsonBody } from './json.js';
export { retryAfterHeader, sendJson, sendProblem } from './respond.js';
export { createHttpService } from './service.js';
export type {
  CloseOptions,
  HttpAnswer,
  HttpRoute,
  HttpService,
  HttpServiceOptions,
  IdempotencyOptions,
  Listening,
  ListenOptions,
  OperationCall,
  OperationInterceptor,
  OperationOutcome,
  RouteContext,
} from './types.js';
