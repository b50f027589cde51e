import { createHash } from 'node:crypto';
import { formatLsn } from './lsn.js';

/**
 * The UUID namespace of change-event MessageIds (a random UUID fixed once; it never changes, or
 * every id would).
 */
export const CHANGE_ID_NAMESPACE = '3f1c6b2e-8d4a-4f57-9e0b-5a7c2d9e1b64';

const NAMESPACE_BYTES = Buffer.from(CHANGE_ID_NAMESPACE.replaceAll('-', ''), 'hex');

/** Positions a change id carries in its own bits; beyond, the id is a UUIDv5 of the same parts. */
const MAX_POSITION = 2 ** 24;

/** A name-based UUID, version 5 (RFC 9562 §5.5): SHA-1 of the namespace and the name. */
export function uuidV5(namespace: Buffer, name: string): string {
  const digest = createHash('sha1').update(namespace).update(name, 'utf8').digest();
  digest[6] = ((digest[6] as number) & 0x0f) | 0x50;
  digest[8] = ((digest[8] as number) & 0x3f) | 0x80;
  return uuidText(digest.toString('hex', 0, 16));
}

function uuidText(hex: string): string {
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

const hex2 = (n: number) => n.toString(16).padStart(2, '0');

/**
 * The MessageIds of one table's changes: a UUID version 8 (RFC 9562 §5.8, custom layout) made of
 * the commit LSN (64 bits), the change's position among the transaction's changes to the table
 * (24 bits, from 0 in commit order) and a tag of the table (34 bits of the SHA-1 of
 * `CHANGE_ID_NAMESPACE`, the server's system identifier and `<schema>.<table>`), in that order:
 *
 * ```
 * LLLLLLLL-LLLL-8LLL-vLpp-pppptttttttt     L: LSN  p: position  t: tag  v: variant 10 + LSN's last 4 bits + position's first 2
 * ```
 *
 * The same committed change always gets the same id, however often it is read again (a restart,
 * a crash, a copied slot); the ids of one table sort in commit order; two tables, or two clusters,
 * meet only if their 34-bit tags do and they change rows in one commit at the same position. A
 * position past 2^24 (a transaction writing more rows than that to one table) gets the UUIDv5 of
 * `<system identifier>/<schema>.<table>/<commit LSN>/<position>` in `CHANGE_ID_NAMESPACE` instead.
 */
export class ChangeIds {
  readonly #systemId: string;
  readonly #table: string;
  /** The tag's top 2 bits. */
  readonly #tagHigh: number;
  /** The tag's low 32 bits, as 8 hex digits. */
  readonly #tagLow: string;

  constructor(systemId: string, table: string) {
    this.#systemId = systemId;
    this.#table = table;
    const digest = createHash('sha1').update(NAMESPACE_BYTES).update(`${systemId}/${table}`, 'utf8').digest();
    const tag = Math.floor(digest.readUIntBE(0, 5) / 64); // the digest's first 34 bits
    this.#tagHigh = Math.floor(tag / 2 ** 32);
    this.#tagLow = (tag % 2 ** 32).toString(16).padStart(8, '0');
  }

  id(commitLsn: bigint, position: number): string {
    if (!Number.isSafeInteger(position) || position < 0 || position >= MAX_POSITION) {
      return uuidV5(NAMESPACE_BYTES, `${this.#systemId}/${this.#table}/${formatLsn(commitLsn)}/${position}`);
    }
    const lsn = commitLsn.toString(16).padStart(16, '0');
    const variant = 0x80 | (Number.parseInt(lsn[15] as string, 16) << 2) | (position >>> 22);
    const middle = ((position >>> 6) & 0xffff).toString(16).padStart(4, '0');
    const last = ((position & 0x3f) << 2) | this.#tagHigh;
    return uuidText(`${lsn.slice(0, 12)}8${lsn.slice(12, 15)}${hex2(variant)}${middle}${hex2(last)}${this.#tagLow}`);
  }
}

/** The MessageId of one row change (see `ChangeIds`). */
export function changeId(systemId: string, table: string, commitLsn: bigint, position: number): string {
  return new ChangeIds(systemId, table).id(commitLsn, position);
}
