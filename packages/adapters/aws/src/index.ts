export type { SnsSqsBroker } from './broker.js';
export { createSnsSqsBroker, snsSqsBinding } from './broker.js';
export type { AwsClients, AwsConnectionOptions, AwsCredentials } from './clients.js';
export { createAwsClients } from './clients.js';
export { snsTopicName, sqsDeadLetterQueueName, sqsQueueName } from './names.js';
export type { PayloadOffloadOptions, SnsSqsBrokerOptions } from './options.js';
export type { PublishReceipt } from './publisher.js';
export type { S3BlobStoreOptions } from './s3-blob-store.js';
export { createS3BlobStore, S3BlobStore } from './s3-blob-store.js';
export type {
  S3Notification,
  S3NotificationRelay,
  S3NotificationRelayOptions,
  S3ObjectCreated,
  S3RelayOutcome,
} from './s3-notifications.js';
export { createS3NotificationRelay, parseS3Notification } from './s3-notifications.js';
export { PAYLOAD_ERROR_HEADER } from './subscription.js';
export { filterPolicy, queuePolicy } from './topology.js';
export { ATTRIBUTE, pointerText, ROUTING_ATTRIBUTES } from './wire.js';
