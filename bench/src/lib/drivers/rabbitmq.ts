import { createRabbitMqBroker } from '@switchboard/rabbitmq';
import type { Channel, ChannelModel, ConfirmChannel } from 'amqplib';
import { connect } from 'amqplib';
import { BrokerDriver, type ConsumeOptions, type DriverSpec, GROUP, nextMessageId, type QueueDriver } from '../queue-driver.js';
import { forEachWindowed } from '../window.js';

const RAW_PREFIX = 'benchraw.';
const SB_PREFIX = 'benchsb.';
/** The adapter's default group queue type; the raw baseline uses the same. */
const QUEUE_TYPE = 'quorum';

function names(prefix: string, topic: string): { exchange: string; queue: string } {
  return { exchange: `${prefix}${topic}`, queue: `${prefix}${topic}@${GROUP}` };
}

async function deleteTopology(channel: Channel, prefix: string, topic: string): Promise<void> {
  const { exchange, queue } = names(prefix, topic);
  await channel.deleteQueue(queue).catch(() => {});
  await channel.deleteExchange(exchange).catch(() => {});
}

/**
 * Raw amqplib doing what the adapter does: a durable topic exchange and a durable quorum queue per
 * topic, persistent + mandatory publishes with a `messageId` on a ConfirmChannel (resolved on the
 * confirm), and a consumer channel with `prefetch = maxInFlight` and a manual ack per message.
 */
export class RawRabbitMqDriver implements QueueDriver {
  readonly #model: ChannelModel;
  readonly #admin: Channel;
  readonly #publisher: ConfirmChannel;

  private constructor(model: ChannelModel, admin: Channel, publisher: ConfirmChannel) {
    this.#model = model;
    this.#admin = admin;
    this.#publisher = publisher;
  }

  static async open(spec: DriverSpec): Promise<RawRabbitMqDriver> {
    const model = await connect(spec.target);
    model.on('error', () => {});
    return new RawRabbitMqDriver(model, await model.createChannel(), await model.createConfirmChannel());
  }

  async setup(topic: string): Promise<void> {
    const { exchange, queue } = names(RAW_PREFIX, topic);
    await this.#admin.assertExchange(exchange, 'topic', { durable: true });
    await this.#admin.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': QUEUE_TYPE } });
    await this.#admin.bindQueue(queue, exchange, topic);
  }

  publish(topic: string, body: Buffer): Promise<void> {
    const { exchange } = names(RAW_PREFIX, topic);
    return new Promise<void>((resolve, reject) => {
      this.#publisher.publish(exchange, topic, body, { persistent: true, mandatory: true, messageId: nextMessageId() }, (error: unknown) =>
        error ? reject(error instanceof Error ? error : new Error(String(error))) : resolve(),
      );
    });
  }

  publishBatch(topic: string, bodies: readonly Buffer[]): Promise<void> {
    return forEachWindowed(bodies, 512, (body) => this.publish(topic, body));
  }

  async consume(topic: string, options: ConsumeOptions, onMessage: (body: Uint8Array) => void): Promise<() => Promise<void>> {
    const channel = await this.#model.createChannel();
    channel.on('error', () => {});
    await channel.prefetch(options.maxInFlight);
    const { consumerTag } = await channel.consume(names(RAW_PREFIX, topic).queue, (message) => {
      if (message === null) return;
      onMessage(message.content);
      channel.ack(message);
    });
    return async () => {
      await channel.cancel(consumerTag);
      await channel.close();
    };
  }

  async cleanup(topic: string): Promise<void> {
    await deleteTopology(this.#admin, RAW_PREFIX, topic);
  }

  async dropScope(): Promise<void> {}

  async close(): Promise<void> {
    await this.#publisher.waitForConfirms().catch(() => {});
    await this.#model.close();
  }
}

/** The Switchboard RabbitMQ adapter with its defaults (quorum queues, confirms). */
export async function createSwitchboardRabbitMqDriver(spec: DriverSpec): Promise<BrokerDriver> {
  const broker = await createRabbitMqBroker({ url: spec.target, prefix: SB_PREFIX });
  return new BrokerDriver(broker, {
    async cleanup(topic) {
      const model = await connect(spec.target);
      try {
        await deleteTopology(await model.createChannel(), SB_PREFIX, topic);
      } finally {
        await model.close();
      }
    },
  });
}
