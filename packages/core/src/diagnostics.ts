import diagnosticsChannel from 'node:diagnostics_channel';

/**
 * Named `node:diagnostics_channel`s. The core publishes; observers (the OpenTelemetry bridge,
 * loggers, the dashboard) subscribe, so the core never imports a tracing library. Publishing to a
 * channel without subscribers costs a property check.
 */
export const channels = {
  /** `{ operation, via, traceparent, request }` when a handler starts. */
  handlerStart: diagnosticsChannel.channel('switchboard:handler:start'),
  /** `{ operation, via, traceparent, durationMs, error? }` when a handler ends. */
  handlerEnd: diagnosticsChannel.channel('switchboard:handler:end'),
  /** `{ operation, url, traceparent, attempt }` before a client request is sent. */
  clientRequest: diagnosticsChannel.channel('switchboard:client:request'),
  /** `{ operation, url, traceparent, status?, durationMs, error? }` when a client request ends. */
  clientResponse: diagnosticsChannel.channel('switchboard:client:response'),
  /** `{ jobId, operation, status }` on every job state change. */
  jobState: diagnosticsChannel.channel('switchboard:job:state'),
  /** `{ messageId, topic, type, traceparent }` when a message or event is published. */
  publish: diagnosticsChannel.channel('switchboard:message:publish'),
  /** `{ messageId, topic, type, attempt, traceparent }` when a delivery reaches a handler. */
  deliver: diagnosticsChannel.channel('switchboard:message:deliver'),
  /** `{ messageId, topic, type, outcome, error? }` when a delivery is settled. */
  settle: diagnosticsChannel.channel('switchboard:message:settle'),
  /**
   * `{ source, slot, lagBytes, maxLagBytes, confirmedLsn, currentLsn, exceeded }` when a change
   * source's replication slot lags more than its bound (`exceeded: true`, at every check while it
   * does) and once when it is back under it (`exceeded: false`).
   */
  changeLag: diagnosticsChannel.channel('switchboard:changes:lag'),
} as const;

export type ChannelName = keyof typeof channels;
