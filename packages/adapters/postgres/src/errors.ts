import { brokerErrors } from '@switchboard/core/kit';

/** The broker's error mapping: any `pg` failure (connection lost, a server error) is `SB_BROKER_UNAVAILABLE`. */
export const postgresErrors = brokerErrors({ engine: 'PostgreSQL' });
