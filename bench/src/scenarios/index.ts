import type { Scenario } from '../lib/scenario.js';
import { syncHttp } from './sync-http.js';

/** Every scenario `npm run bench` knows, in the order a full run measures them. */
export const scenarios: Scenario[] = [syncHttp];
