import { createHash } from 'node:crypto';
import { formatLsn } from './lsn.js';

/**
 * The UUID namespace of change-event MessageIds (a random UUID fixed once; it never changes, or
 * every id would).
 */
export const CHANGE_ID_NAMESPACE = '3f1c6b2e-8d4a-4f57-9e0b-5a7c2d9e1b64';

const NAMESPACE_BYTES = Buffer.from(CHANGE_ID_NAMESPACE.replaceAll('-', ''), 'hex');

/** A name-based UUID, version 5 (RFC 9562 §5.5): SHA-1 of the namespace and the name. */
export function uuidV5(namespace: Buffer, name: string): string {
  const hash = createHash('sha1').update(namespace).update(name, 'utf8').digest();
  hash[6] = ((hash[6] as number) & 0x0f) | 0x50;
  hash[8] = ((hash[8] as number) & 0x3f) | 0x80;
  const hex = hash.toString('hex', 0, 16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/**
 * The MessageId of one row change: UUIDv5 in `CHANGE_ID_NAMESPACE` of
 * `<system identifier>/<schema>.<table>/<commit LSN X/Y>/<position>`, where `position` counts the
 * transaction's changes to that table from 0 in commit order. The same committed change always
 * gets the same id, however often it is read again (a restart, a crash, a copied slot), and the ids
 * of two clusters (two system identifiers) never meet.
 */
export function changeId(systemId: string, table: string, commitLsn: bigint, position: number): string {
  return uuidV5(NAMESPACE_BYTES, `${systemId}/${table}/${formatLsn(commitLsn)}/${position}`);
}
