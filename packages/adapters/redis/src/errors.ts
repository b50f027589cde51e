import { brokerErrors } from '@switchboard/core/kit';

/** The Redis brokers' error mapping: any ioredis failure (connection lost, retries exhausted, error reply) is `SB_BROKER_UNAVAILABLE`. */
export const redisErrors = brokerErrors({ engine: 'Redis' });
