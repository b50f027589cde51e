import type { Scenario } from '../lib/scenario.js';
import { asyncHttp } from './async-http.js';
import { brokerAws } from './broker-aws.js';
import { brokerNats, brokerPostgres, brokerRabbitMq, brokerRedis } from './broker-engines.js';
import { brokerMemory } from './broker-memory.js';
import { cesqlFilter } from './cesql-filter.js';
import { changeEvents } from './change-events.js';
import { eventsAtMostOnce } from './events-at-most-once.js';
import { messaging, messagingSigning } from './messaging.js';
import { observability } from './observability.js';
import { sqliteBacklog } from './sqlite-backlog.js';
import { sqliteQueue } from './sqlite-queue.js';
import { syncHttp } from './sync-http.js';
import { syncHttpAuth } from './sync-http-auth.js';

/** Every scenario `npm run bench` knows, in the order a full run measures them. */
export const scenarios: Scenario[] = [
  syncHttp,
  syncHttpAuth,
  asyncHttp,
  brokerMemory,
  sqliteQueue,
  sqliteBacklog,
  brokerNats,
  brokerRabbitMq,
  brokerRedis,
  brokerPostgres,
  brokerAws,
  messaging,
  messagingSigning,
  eventsAtMostOnce,
  cesqlFilter,
  changeEvents,
  observability,
];
