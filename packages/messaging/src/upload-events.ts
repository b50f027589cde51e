import type { AnyContract, BlobInfo, BlobObject, BlobPutOptions, BlobSource, BlobStore, EventName } from '@switchboard/core';
import { SwitchboardError } from '@switchboard/core';
import type { Messaging } from './messaging.js';

export interface UploadEventsOptions<C extends AnyContract, K extends EventName<C>> {
  /** Emits the events: this service's messaging. */
  readonly messaging: Pick<Messaging, 'emit'>;
  /** The contract declaring the event, with `blobCreated()`: `events: { 'blob.created': blobCreated() }`. */
  readonly contract: C;
  /** The event emitted on every put. Default `blob.created`. */
  readonly event?: K;
}

/** `put` options of a store that announces uploads: the store's own, and the event's. */
export interface UploadPutOptions extends BlobPutOptions {
  /** CloudEvents `subject` of the event, e.g. `users/42/avatar`. */
  readonly subject?: string;
  /** Ordering key of the event. */
  readonly key?: string;
  /** W3C `traceparent` the event continues. */
  readonly traceparent?: string;
}

/** What a `put` answers: the stored blob, and the MessageId of the event that announced it. */
export interface Uploaded extends BlobInfo {
  readonly messageId: string;
}

/** A blob store whose `put` also emits an upload event. Everything else is the wrapped store's. */
export interface UploadingBlobStore extends BlobStore {
  put(source: BlobSource, options: UploadPutOptions): Promise<Uploaded>;
  /** The wrapped store. */
  readonly store: BlobStore;
}

/**
 * Wraps a blob store (the filesystem store, any other) so that every `put` announces the upload:
 * once the bytes are stored, the contract's upload event (declared with `blobCreated()`) is
 * emitted with the blob's `BlobInfo` as its data and the blob attached by claim check (`dataref`,
 * `datahash`, `datasize`, `datamediatype`), so any service reacts to "a file was uploaded" and
 * reads the bytes with `context.attachment()`, checked against the hash. Receivers need the
 * store among their `blobs`.
 *
 * `put` resolves once the broker confirmed the event. If the emit fails, `put` rejects (the blob
 * stays stored); putting the same bytes again is safe (stored once) and emits a new event. Each
 * put is its own upload with its own MessageId, even for identical bytes.
 */
export function withUploadEvents<C extends AnyContract, K extends EventName<C> = EventName<C>>(
  store: BlobStore,
  options: UploadEventsOptions<C, K>,
): UploadingBlobStore {
  const event = (options.event ?? 'blob.created') as K;
  const definition = Object.hasOwn(options.contract.events, event) ? options.contract.events[event] : undefined;
  if (definition === undefined) {
    throw new SwitchboardError('SB_CONFIG_INVALID', {
      detail: `contract ${options.contract.name} has no event ${event}: declare it with blobCreated()`,
    });
  }
  if (!definition.attachment || definition.data === undefined) {
    throw new SwitchboardError('SB_CONFIG_INVALID', {
      detail: `event ${event} of contract ${options.contract.name} must carry the blob's data and an attachment: declare it with blobCreated()`,
    });
  }
  const { messaging, contract } = options;
  return {
    store,
    get name() {
      return store.name;
    },
    async put(source: BlobSource, putOptions: UploadPutOptions): Promise<Uploaded> {
      const { subject, key, traceparent, ...storeOptions } = putOptions;
      const info = await store.put(source, storeOptions);
      const sent = await messaging.emit(
        contract,
        event,
        ...([
          info,
          {
            attachmentBlob: info,
            ...(subject === undefined ? {} : { subject }),
            ...(key === undefined ? {} : { key }),
            ...(traceparent === undefined ? {} : { traceparent }),
          },
        ] as never),
      );
      return { ...info, messageId: sent.messageId };
    },
    get: (blobKey: string): Promise<BlobObject> => store.get(blobKey),
    head: (blobKey: string) => store.head(blobKey),
    has: (blobKey: string) => store.has(blobKey),
    delete: (blobKey: string) => store.delete(blobKey),
    cleanup: (now?: number) => store.cleanup(now),
    resolve: (uri: string) => store.resolve(uri),
    close: () => store.close(),
  };
}
