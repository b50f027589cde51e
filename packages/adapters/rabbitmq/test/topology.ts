import type { Broker } from '@switchboard/core';
import { connect } from 'amqplib';

/**
 * Remembers the exchanges and queues the brokers of one test file create, so they can be deleted
 * afterwards (delay queues expire on their own).
 */
export class TopologyTracker {
  readonly #url: string;
  readonly #prefix: string;
  readonly #topics = new Set<string>();
  readonly #queues = new Set<string>();

  constructor(url: string, prefix: string) {
    this.#url = url;
    this.#prefix = prefix;
  }

  track<T extends Broker>(broker: T): T {
    const publish = broker.publish.bind(broker);
    const declareGroup = broker.declareGroup.bind(broker);
    const subscribe = broker.subscribe.bind(broker);
    const requests = broker.requests;
    if (requests !== undefined) {
      const request = requests.request.bind(requests);
      // Requests travel the `<topic>.requests` exchange, declared by the request itself.
      requests.request = (message, options) => {
        this.#topics.add(`${message.topic}.requests`);
        return request(message, options);
      };
    }
    Object.assign(broker, {
      publish: (message: Parameters<Broker['publish']>[0]) => {
        this.#topics.add(message.topic);
        return publish(message);
      },
      declareGroup: (topic: string, group: string) => {
        this.#topics.add(topic);
        this.#queues.add(`${this.#prefix}${topic}@${group}`);
        return declareGroup(topic, group);
      },
      subscribe: (options: Parameters<Broker['subscribe']>[0], handler: Parameters<Broker['subscribe']>[1]) => {
        this.#topics.add(options.topic);
        this.#queues.add(`${this.#prefix}${options.topic}@${options.group}`);
        return subscribe(options, handler);
      },
    });
    return broker;
  }

  async cleanup(): Promise<void> {
    const connection = await connect(this.#url);
    const channel = await connection.createChannel();
    for (const queue of this.#queues) await channel.deleteQueue(queue);
    for (const topic of this.#topics) await channel.deleteExchange(`${this.#prefix}${topic}`);
    await connection.close();
  }
}
