import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { S3Client } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';

/** A static credential pair (what an emulator accepts). */
export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

/** Where and as whom the SNS, SQS and S3 clients connect. */
export interface AwsConnectionOptions {
  /** Region. Default: `AWS_REGION`, then `AWS_DEFAULT_REGION`, then `us-east-1`. */
  readonly region?: string;
  /**
   * One endpoint for SNS, SQS and S3 alike, e.g. an emulator at `http://127.0.0.1:4566`. Default:
   * AWS's own endpoints for the region.
   */
  readonly endpoint?: string;
  /**
   * Default: the SDK's standard chain (environment, shared config and SSO, web identity, container
   * and instance roles). With an `endpoint` on loopback and no credentials in the environment,
   * dummy ones (`test`/`test`): emulators accept anything.
   */
  readonly credentials?: AwsCredentials | (() => Promise<AwsCredentials>);
  /** Attempts of the SDK per call (its own retry with backoff). Default 3. */
  readonly maxAttempts?: number;
}

export interface AwsClients {
  readonly sns: SNSClient;
  readonly sqs: SQSClient;
  readonly s3: S3Client;
}

/** The region the options, then the environment name; `us-east-1` when none does. */
export function resolveRegion(region: string | undefined): string {
  return region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1';
}

function isLoopback(endpoint: string): boolean {
  try {
    const host = new URL(endpoint).hostname;
    return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\./.test(host);
  } catch {
    return false;
  }
}

function environmentHasCredentials(): boolean {
  const env = process.env;
  return Boolean(
    env.AWS_ACCESS_KEY_ID ||
      env.AWS_PROFILE ||
      env.AWS_WEB_IDENTITY_TOKEN_FILE ||
      env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI ||
      env.AWS_CONTAINER_CREDENTIALS_FULL_URI,
  );
}

/**
 * The configuration shared by the three clients: keep-alive sockets (long polls hold one each, so
 * there are many), a request timeout longer than the longest long poll, and the endpoint, region
 * and credentials.
 */
export function clientConfig(options: AwsConnectionOptions, purpose: 'sns' | 'sqs' | 's3') {
  // The SDK warns on Node 20 that its releases after January 2027 will need Node 22. The versions
  // this package pins support Node 20, so the notice is silenced unless the application set it.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const endpoint = options.endpoint;
  const credentials =
    options.credentials ??
    (endpoint !== undefined && isLoopback(endpoint) && !environmentHasCredentials()
      ? { accessKeyId: 'test', secretAccessKey: 'test' }
      : undefined);
  const sockets = purpose === 'sqs' ? 512 : 128;
  return {
    region: resolveRegion(options.region),
    maxAttempts: options.maxAttempts ?? 3,
    ...(endpoint === undefined ? {} : { endpoint }),
    ...(credentials === undefined ? {} : { credentials }),
    requestHandler: {
      // A 20 s long poll must not time out; anything else answers well within this.
      requestTimeout: 35_000,
      connectionTimeout: 5_000,
      httpAgent: new HttpAgent({ keepAlive: true, maxSockets: sockets }),
      httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets: sockets }),
    },
  };
}

/** New SNS, SQS and S3 clients for `options` (S3 with path-style URLs when an endpoint is given). */
export function createAwsClients(options: AwsConnectionOptions): AwsClients {
  return {
    sns: new SNSClient(clientConfig(options, 'sns')),
    sqs: new SQSClient(clientConfig(options, 'sqs')),
    s3: new S3Client({ ...clientConfig(options, 's3'), forcePathStyle: options.endpoint !== undefined }),
  };
}
