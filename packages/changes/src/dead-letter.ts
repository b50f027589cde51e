import type { AnyContract, CloudEventsBinding, FieldError, NewDeadLetter } from '@switchboard/core';
import { createCloudEvent, encodeCloudEvent, SwitchboardError } from '@switchboard/core';
import { eventsTopic, eventType } from '@switchboard/messaging';

/** A row change that cannot be published, as both change sources describe it. */
export interface RefusedChange {
  readonly contract: AnyContract;
  readonly event: string;
  readonly id: string;
  readonly source: string;
  readonly subject: string | undefined;
  /** The ordering key it would have been published with. */
  readonly key: string;
  readonly data: Record<string, unknown>;
}

/**
 * The dead letter of a row change: the event that would have been sent (so it can be replayed
 * once fixed), encoded for the broker's binding, with reason `invalid` and `detail` naming the row
 * key and what is wrong. The messaging layer does not build it: it refuses data that fails its
 * schema, which is the very reason the change is dead-lettered.
 */
export function changeDeadLetter(
  change: RefusedChange,
  options: {
    readonly binding: CloudEventsBinding;
    readonly group: string;
    readonly detail: string;
    readonly errors: readonly FieldError[];
  },
): NewDeadLetter {
  const type = eventType(change.contract, change.event);
  const event = createCloudEvent({
    id: change.id,
    source: change.source,
    type,
    ...(change.subject === undefined ? {} : { subject: change.subject }),
    datacontenttype: 'application/json',
    data: Buffer.from(JSON.stringify(change.data), 'utf8'),
  });
  const encoded = encodeCloudEvent(event, options.binding);
  const problem = new SwitchboardError('SB_MESSAGE_INVALID', { detail: options.detail, errors: options.errors }).toProblem();
  return {
    messageId: change.id,
    source: change.source,
    topic: eventsTopic(change.contract),
    group: options.group,
    type,
    headers: encoded.headers,
    body: encoded.body,
    ...(change.subject === undefined ? {} : { key: change.key }),
    reason: 'invalid',
    detail: options.detail,
    attempts: [{ attempt: 1, at: Date.now(), error: problem }],
  };
}

/** `pointer: message; …` of a validation failure, or its message. */
export function validationDetail(error: SwitchboardError): string {
  return error.errors?.map((e) => `${e.pointer || '/'}: ${e.message}`).join('; ') ?? error.message;
}
