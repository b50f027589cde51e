export { readBody } from './body.js';
export { isJsonContentType } from './content-type.js';
export { retryAfterHeader, sendJson, sendProblem } from './respond.js';
export { createHttpService } from './service.js';
export type {
  CloseOptions,
  HttpAnswer,
  HttpRoute,
  HttpService,
  HttpServiceOptions,
  IdempotencyOptions,
  ListenOptions,
  OperationCall,
  OperationInterceptor,
  OperationOutcome,
  RouteContext,
} from './types.js';
