import type { ConnectionOptions, NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { SwitchboardError } from '@switchboard/core';
import { toBrokerError } from './errors.js';

/** How a broker gets its connection: one it is given, or one it opens from `servers`. */
export interface ConnectionSource {
  /** Server URL(s), e.g. `nats://127.0.0.1:4222`. Ignored when `connection` is given. */
  readonly servers?: string | readonly string[];
  /** An open connection to use instead of connecting. The broker never closes a connection it did not open. */
  readonly connection?: NatsConnection;
  /** Extra options for the connection the broker opens (credentials, TLS, name, ...). */
  readonly connectOptions?: Omit<ConnectionOptions, 'servers'>;
}

/**
 * The given connection, or a new one that reconnects forever (`owns: true`: the broker closes it).
 * `name` is the connection's name on the server; `factory` names the caller in a config error.
 */
export async function openConnection(
  source: ConnectionSource,
  name: string,
  factory: string,
): Promise<{ connection: NatsConnection; owns: boolean }> {
  if (source.connection !== undefined) return { connection: source.connection, owns: false };
  if (source.servers === undefined)
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `${factory} needs \`servers\` or \`connection\`` });
  try {
    const connection = await connect({
      name,
      noAsyncTraces: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      ...source.connectOptions,
      servers: typeof source.servers === 'string' ? source.servers : [...source.servers],
    });
    return { connection, owns: true };
  } catch (error) {
    throw toBrokerError(error, 'connect');
  }
}
