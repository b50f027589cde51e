import type { NextFunction, Request, Response } from 'express';
import type { HttpService } from '../server/types.js';

/**
 * An Express middleware serving a Switchboard service; paths it does not own go to `next()`.
 * Mount it before any body parser (`express.json()` would consume the body it must stream):
 *
 * ```ts
 * app.use('/api', switchboardExpress(service)); // service created with basePath ''
 * ```
 *
 * Express strips the mount path from `req.url`, so the service's `basePath` is relative to it.
 */
export function switchboardExpress(service: HttpService): (req: Request, res: Response, next: NextFunction) => void {
  return (req, res, next) => {
    service.handle(req, res, () => next());
  };
}
