import type { BlobStore, Broker, DeliveryGuarantee } from '@switchboard/core';
import { SwitchboardError } from '@switchboard/core';
import { awsTarget, parseEngineUrl, redact } from './engine-url.js';

/**
 * What the engine an URL names promises, known without connecting: `at-most-once` for MQTT (see
 * `docs/adapters/mqtt.md`), `at-least-once` for every other engine. `createMessaging` refuses an
 * at-most-once broker as its main broker; a launcher can refuse the URL before starting anything.
 */
export function engineGuarantee(url: string): DeliveryGuarantee {
  return parseEngineUrl(url).engine === 'mqtt' ? 'at-most-once' : 'at-least-once';
}

/**
 * Opens the broker an engine URL names. Each engine's package is loaded only when it is used, so
 * an application installs just the adapter it runs on.
 */
export async function connectBroker(url: string): Promise<Broker> {
  const target = parseEngineUrl(url);
  const prefix = target.params.prefix;
  switch (target.engine) {
    case 'memory': {
      const { createMemoryBroker } = await import('@switchboard/memory');
      return createMemoryBroker();
    }
    case 'sqlite': {
      const { createSqliteBroker } = await import('@switchboard/sqlite');
      return createSqliteBroker({ path: target.path ?? '', ...(prefix ? { prefix } : {}) });
    }
    case 'nats': {
      const { createNatsBroker } = await import('@switchboard/nats');
      return createNatsBroker({ url: stripParams(url), ...(prefix ? { prefix } : {}) });
    }
    case 'rabbitmq': {
      const { createRabbitMqBroker } = await import('@switchboard/rabbitmq');
      return createRabbitMqBroker({ url: stripParams(url), ...(prefix ? { prefix } : {}) });
    }
    case 'redis': {
      const { createRedisStreamsBroker } = await import('@switchboard/redis');
      return createRedisStreamsBroker({
        url: stripParams(url),
        ...(prefix ? { prefix } : {}),
        ...(target.params.persistent === 'true' ? { persistent: true } : {}),
      });
    }
    case 'postgres': {
      const { createPostgresBroker } = await import('@switchboard/postgres');
      return createPostgresBroker({ url: stripParams(url), ...(prefix ? { prefix } : {}) });
    }
    case 'mqtt': {
      // At-most-once (see docs/adapters/mqtt.md): meant as `createMessaging({ atMostOnce: { broker } })`.
      const { createMqttBroker } = await import('@switchboard/mqtt');
      return createMqttBroker({ url: stripParams(url), ...(prefix ? { prefix } : {}) });
    }
    case 'sns-sqs': {
      const aws = awsTarget(url);
      const { createSnsSqsBroker } = await import('@switchboard/aws');
      const p = aws.params;
      const number = (name: string) => (p[name] === undefined ? {} : { [name]: Number(p[name]) });
      return createSnsSqsBroker({
        ...(aws.endpoint === undefined ? {} : { endpoint: aws.endpoint }),
        region: aws.region,
        ...(prefix ? { prefix } : {}),
        ...(p.fifo === 'true' ? { fifo: true } : {}),
        ...(p.provision === 'verify' ? { provision: 'verify' as const } : {}),
        ...number('maxReceiveCount'),
        ...number('visibilityTimeoutSeconds'),
        ...number('waitTimeSeconds'),
        ...(p.offload === 'true' ? { payloadOffload: { store: await s3Store(url, {}) } } : {}),
      });
    }
  }
}

/** Whether the engine an URL names comes with a blob store for claim checks (`sns-sqs:` has S3). */
export function hasBlobStore(url: string): boolean {
  return parseEngineUrl(url).engine === 'sns-sqs';
}

/**
 * Opens the blob store that goes with an engine URL: for `sns-sqs:`, S3 at the same endpoint, in
 * the URL's `bucket` under `<prefix>claim-checks/`, so one setting switches both the broker and the
 * claim-check store. `name` is the store's name in its `blob://` URIs (every service sharing the
 * bucket uses the same). Other engines have none: `SB_CONFIG_INVALID` (see {@link hasBlobStore}).
 */
export async function connectBlobStore(url: string, options: { readonly name?: string } = {}): Promise<BlobStore> {
  const target = parseEngineUrl(url);
  if (target.engine !== 'sns-sqs') {
    throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `${redact(url)} names an engine without a blob store` });
  }
  return s3Store(url, options);
}

async function s3Store(url: string, options: { readonly name?: string }) {
  const aws = awsTarget(url);
  const { createS3BlobStore } = await import('@switchboard/aws');
  return createS3BlobStore({
    ...(aws.endpoint === undefined ? {} : { endpoint: aws.endpoint }),
    region: aws.region,
    bucket: aws.bucket,
    keyPrefix: `${aws.params.prefix ?? ''}claim-checks/`,
    ...(options.name === undefined ? {} : { name: options.name }),
    ...(aws.params.provision === 'verify' ? { provision: 'verify' as const } : {}),
  });
}

/** Removes Switchboard's own query parameters before a URL reaches a driver. */
function stripParams(url: string): string {
  const parsed = new URL(url);
  for (const key of ['prefix', 'persistent']) parsed.searchParams.delete(key);
  return parsed.toString();
}
