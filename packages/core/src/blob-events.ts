import type { BlobInfo } from './blobs.js';
import { type EventDefinition, event } from './contract.js';
import type { StandardSchemaV1 } from './standard-schema.js';

/**
 * "A file was uploaded" as an event: the data of a `blob.created` event is the stored blob's
 * `BlobInfo` (content address, size, media type, hash, URI, times), and the event carries the blob
 * by claim check (`dataref` + `datahash`), so a receiver reads the bytes with
 * `context.attachment()`, verified against the hash. The messaging layer's `withUploadEvents`
 * wrapper emits it on every `put` of a blob store.
 */
export type BlobCreated = BlobInfo;

const SHA256_HEX = /^[0-9a-f]{64}$/;

type Issue = StandardSchemaV1.Issue;

function check(value: Record<string, unknown>, issues: Issue[], name: keyof BlobInfo, ok: (v: unknown) => boolean, expected: string): void {
  if (!ok(value[name])) issues.push({ message: `expected ${expected}`, path: [name] });
}

const isString = (v: unknown) => typeof v === 'string' && v !== '';
const isHash = (v: unknown) => typeof v === 'string' && SHA256_HEX.test(v);
const isCount = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isTime = (v: unknown) => typeof v === 'number' && Number.isFinite(v);

/** Standard Schema of `BlobInfo` (dependency-free): the data of a `blob.created` event. */
export const blobInfoSchema: StandardSchemaV1<BlobInfo, BlobInfo> = {
  '~standard': {
    version: 1,
    vendor: 'switchboard',
    validate(value: unknown): StandardSchemaV1.Result<BlobInfo> {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        return { issues: [{ message: 'expected a blob description object', path: [] }] };
      }
      const v = value as Record<string, unknown>;
      const issues: Issue[] = [];
      check(v, issues, 'key', isHash, 'a lowercase hex SHA-256 content address');
      check(v, issues, 'sha256', isHash, 'a lowercase hex SHA-256');
      check(v, issues, 'size', isCount, 'a byte count');
      check(v, issues, 'mediaType', isString, 'a media type');
      check(v, issues, 'uri', isString, 'the blob URI');
      check(v, issues, 'createdAt', isTime, 'epoch milliseconds');
      if (v.expiresAt !== undefined) check(v, issues, 'expiresAt', isTime, 'epoch milliseconds');
      if (issues.length > 0) return { issues };
      const info: BlobInfo = {
        key: v.key as string,
        sha256: v.sha256 as string,
        size: v.size as number,
        mediaType: v.mediaType as string,
        uri: v.uri as string,
        createdAt: v.createdAt as number,
        ...(v.expiresAt === undefined ? {} : { expiresAt: v.expiresAt as number }),
      };
      return { value: info };
    },
  },
};

/**
 * The contract entry of an upload event: `events: { 'blob.created': blobCreated() }`. Its data is
 * the blob's `BlobInfo`; the blob itself travels by claim check (`attachment: true`).
 */
export function blobCreated(options: { readonly description?: string } = {}): EventDefinition<typeof blobInfoSchema> {
  return event({
    data: blobInfoSchema,
    attachment: true,
    description: options.description ?? 'a blob was stored: its content address, size, media type and hash; the bytes by claim check',
  });
}
