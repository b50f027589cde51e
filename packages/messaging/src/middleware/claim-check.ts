import { Readable } from 'node:stream';
import type { BlobStore, CloudEvent } from '@switchboard/core';
import { isSwitchboardError, parseDataHash, SwitchboardError, traceAsync, traceManual, tracing } from '@switchboard/core';
import { dataKind, missingBlob, readAllBytes, refuseDataref, verifyBlobStream } from '@switchboard/core/kit';
import type { Inbound, Middleware, Outcome, Step } from '../pipeline.js';
import type { AttachmentInfo } from '../types.js';

const CLAIM_CHECK_CODES = new Set(['SB_CLAIM_CHECK_MISSING', 'SB_CLAIM_CHECK_HASH_MISMATCH', 'SB_DATAREF_REFUSED']);

/** Finds the configured store that owns a `dataref`; refuses every other URI (`SB_DATAREF_REFUSED`). The URI is never fetched. */
export function resolveDataref(stores: readonly BlobStore[], uri: string): { store: BlobStore; key: string } {
  for (const store of stores) {
    try {
      return { store, key: store.resolve(uri) };
    } catch (error) {
      if (!isSwitchboardError(error, 'SB_DATAREF_REFUSED')) throw error;
    }
  }
  throw refuseDataref(uri, stores.length === 0 ? 'no blob store is configured' : 'not a URI of a configured blob store');
}

type Reference = AttachmentInfo & { readonly isData: boolean };

function readReference(event: CloudEvent): Reference | undefined {
  const ext = event.extensions;
  const uri = ext?.dataref;
  if (typeof uri !== 'string') return undefined;
  const hash = typeof ext?.datahash === 'string' ? parseDataHash(ext.datahash) : undefined;
  if (hash === undefined) throw refuseDataref(uri, 'the event carries no valid datahash for its dataref');
  const mediaType = typeof ext?.datamediatype === 'string' ? ext.datamediatype : undefined;
  return {
    uri,
    sha256: hash.hex,
    ...(typeof ext?.datasize === 'number' ? { size: ext.datasize } : {}),
    mediaType: mediaType ?? event.datacontenttype ?? 'application/json',
    ...(typeof ext?.dataexpires === 'string' ? { expires: ext.dataexpires } : {}),
    // The data itself was claim-checked: no inline data, no `datamediatype` (it is described by `datacontenttype`).
    isData: event.data === undefined && mediaType === undefined,
  };
}

function toData(bytes: Buffer, contentType: string): unknown {
  switch (dataKind(contentType)) {
    case 'json':
      try {
        return JSON.parse(bytes.toString('utf8'));
      } catch (error) {
        throw new SwitchboardError('SB_MESSAGE_INVALID', {
          detail: 'the claim-checked data is not valid JSON',
          errors: [{ pointer: '', message: (error as Error).message }],
        });
      }
    case 'text':
      return bytes.toString('utf8');
    default:
      return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
}

/**
 * The consumer side of the claim check. For an event with `dataref`:
 * - the URI must belong to one of `stores` (else `SB_DATAREF_REFUSED`), and a `datahash` is required;
 * - claim-checked data (no inline data, no `datamediatype`) is fetched, verified against the hash and
 *   parsed by `datacontenttype` before validation, so handlers never see the difference;
 * - an attachment is checked to exist (`SB_CLAIM_CHECK_MISSING`) and offered as a lazy, verified
 *   stream (`ctx.attachment()`). If reading it fails the hash check, that failure decides the
 *   outcome even when the handler swallowed it: the message is dead-lettered (`claim-check`).
 */
export function claimCheck(stores: readonly BlobStore[]): Middleware {
  return (next) => (message) => {
    const event = message.event!;
    let reference: Reference | undefined;
    try {
      reference = readReference(event);
    } catch (error) {
      return Promise.reject(error);
    }
    // Most events carry no claim check: they pass without a promise of their own.
    if (reference === undefined) return next(message);
    return claimed(stores, message, reference, next);
  };
}

async function claimed(stores: readonly BlobStore[], message: Inbound, reference: Reference, next: Step): Promise<Outcome> {
  const event = message.event!;
  const { store, key } = resolveDataref(stores, reference.uri);
  const expected = { sha256: reference.sha256, ...(reference.size === undefined ? {} : { size: reference.size }) };
  if (reference.isData) {
    const fetch = async (): Promise<Buffer> => readAllBytes(verifyBlobStream((await store.get(key)).body, expected));
    const bytes = tracing.claimCheckGet.hasSubscribers
      ? await traceAsync(
          tracing.claimCheckGet,
          {
            store: storeName(store),
            ref: reference.uri,
            messageId: event.id,
            destination: message.delivery.topic,
            ...(reference.size === undefined ? {} : { size: reference.size }),
          },
          fetch,
          (context, value) => {
            context.size = value.byteLength;
          },
        )
      : await fetch();
    message.data = toData(bytes, reference.mediaType);
    return next(message);
  }
  if (!(await store.has(key))) throw missingBlob(key);
  const { isData: _isData, ...info } = reference;
  message.attachment = {
    info,
    open: () => {
      // Traced as a claim-check get from the open to the end of the stream, when someone listens:
      // `ok` once every byte was read and matched the hash; a stream closed before its end was not
      // verified (`errorType` `SB_CLAIM_CHECK_UNVERIFIED`).
      const trace = tracing.claimCheckGet.hasSubscribers
        ? traceManual(tracing.claimCheckGet, {
            store: storeName(store),
            ref: reference.uri,
            messageId: event.id,
            destination: message.delivery.topic,
            ...(reference.size === undefined ? {} : { size: reference.size }),
          })
        : undefined;
      let read = 0;
      let settled = false;
      const stream = Readable.from(
        (async function* verified() {
          try {
            const blob = await store.get(key);
            for await (const chunk of verifyBlobStream(blob.body, expected)) {
              read += (chunk as Buffer).length;
              yield chunk;
            }
            settled = true;
            if (trace !== undefined) trace.context.size = read;
            trace?.end();
          } catch (error) {
            settled = true;
            trace?.end(error);
            throw error;
          }
        })(),
        { objectMode: false },
      );
      if (trace !== undefined) {
        stream.on('close', () => {
          if (settled) return;
          trace.context.errorType = 'SB_CLAIM_CHECK_UNVERIFIED';
          trace.end(new Error(`the attachment stream was closed after ${read} bytes, before its hash could be checked`));
        });
      }
      stream.on('error', (error) => {
        if (isSwitchboardError(error) && CLAIM_CHECK_CODES.has(error.code)) message.attachmentFailure ??= error;
      });
      return stream;
    },
  };
  try {
    const outcome = await next(message);
    if (message.attachmentFailure !== undefined) throw message.attachmentFailure;
    return outcome;
  } catch (error) {
    throw message.attachmentFailure ?? error;
  }
}

function storeName(store: BlobStore): string {
  return (store as { name?: string }).name ?? store.constructor?.name ?? 'blobs';
}
