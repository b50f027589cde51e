import type { ConnectionOptions, NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { SwitchboardError } from '@switchboard/core';
import { brokerErrors, describeError } from '@switchboard/core/kit';

/** How a broker gets its connection: one it is given, or one it opens from `url`. */
export interface ConnectionSource {
  /** Server URL, e.g. `nats://127.0.0.1:4222`, or several for a cluster. Ignored when `connection` is given. */
  readonly url?: string | readonly string[];
  /** An open connection to use instead of connecting. The broker never closes a connection it did not open. */
  readonly connection?: NatsConnection;
  /** Extra options for the connection the broker opens (credentials, TLS, name, ...). */
  readonly connectOptions?: Omit<ConnectionOptions, 'servers'>;
}

/** The NATS adapters' error mapping: payload limits → `SB_MESSAGE_TOO_LARGE`, a closed connection → `SB_CLOSED`. */
export const natsErrors = brokerErrors({
  engine: 'NATS',
  tooLarge: (error) => /max_payload|maximum payload|message size exceeds|exceeds maximum/i.test(describeError(error)),
  closed: (error) => error instanceof Error && (error.name === 'ClosedConnectionError' || error.name === 'DrainingConnectionError'),
});

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
  if (source.url === undefined) throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `${factory} needs \`url\` or \`connection\`` });
  try {
    const connection = await connect({
      name,
      noAsyncTraces: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      ...source.connectOptions,
      servers: typeof source.url === 'string' ? source.url : [...source.url],
    });
    return { connection, owns: true };
  } catch (error) {
    throw natsErrors.toBrokerError(error, 'connect');
  }
}
