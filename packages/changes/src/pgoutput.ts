/**
 * A decoder of the `pgoutput` logical replication protocol, version 1 (the messages of PostgreSQL's
 * built-in output plugin, "Logical Replication Message Formats" in the PostgreSQL documentation).
 * It reads one message from the payload of an XLogData message and returns it; column values stay
 * in PostgreSQL's text form (`values.ts` turns them into JSON values). Streaming (`streaming on`),
 * two-phase and binary messages are never requested and are refused.
 */

/** Milliseconds between the Unix epoch and PostgreSQL's (2000-01-01). */
const POSTGRES_EPOCH_MS = 946_684_800_000;

/** One column value: its text form, `null` for SQL NULL, `undefined` for an unchanged TOASTed value not sent. */
export type TupleValue = string | null | undefined;

export type ReplicaIdentity = 'default' | 'nothing' | 'full' | 'index';

export interface RelationColumn {
  readonly name: string;
  readonly typeOid: number;
  readonly typeModifier: number;
  /** Part of the replica identity (the key sent with updates and deletes). */
  readonly key: boolean;
}

export interface RelationMessage {
  readonly tag: 'relation';
  readonly relationId: number;
  /** The schema; pgoutput sends an empty string for `pg_catalog`. */
  readonly schema: string;
  readonly name: string;
  readonly replicaIdentity: ReplicaIdentity;
  readonly columns: readonly RelationColumn[];
}

export type PgoutputMessage =
  | { readonly tag: 'begin'; readonly finalLsn: bigint; readonly commitTimeMs: number; readonly xid: number }
  | { readonly tag: 'commit'; readonly commitLsn: bigint; readonly endLsn: bigint; readonly commitTimeMs: number }
  | { readonly tag: 'origin'; readonly originLsn: bigint; readonly name: string }
  | RelationMessage
  | { readonly tag: 'type'; readonly typeOid: number; readonly schema: string; readonly name: string }
  | { readonly tag: 'insert'; readonly relationId: number; readonly new: TupleValue[] }
  | {
      readonly tag: 'update';
      readonly relationId: number;
      /** The old key (replica identity columns; others `null`), sent when the key changed. */
      readonly key?: TupleValue[];
      /** The whole old row, sent with `REPLICA IDENTITY FULL`. */
      readonly old?: TupleValue[];
      readonly new: TupleValue[];
    }
  | { readonly tag: 'delete'; readonly relationId: number; readonly key?: TupleValue[]; readonly old?: TupleValue[] }
  | { readonly tag: 'truncate'; readonly relationIds: number[]; readonly cascade: boolean; readonly restartIdentity: boolean }
  | { readonly tag: 'message'; readonly transactional: boolean; readonly lsn: bigint; readonly prefix: string; readonly content: Buffer };

export class PgoutputProtocolError extends Error {
  override readonly name = 'PgoutputProtocolError';
}

const IDENTITY: Record<number, ReplicaIdentity> = { 100: 'default', 110: 'nothing', 102: 'full', 105: 'index' };

/** Reads a pgoutput message starting at `offset` of `buffer`. */
export function decodePgoutput(buffer: Buffer, offset = 0): PgoutputMessage {
  const r = new Reader(buffer, offset);
  const tag = r.u8();
  switch (tag) {
    case 0x42 /* B */:
      return { tag: 'begin', finalLsn: r.u64(), commitTimeMs: r.timestampMs(), xid: r.u32() };
    case 0x43 /* C */:
      {
        r.u8(); // flags, unused
        return { tag: 'commit', commitLsn: r.u64(), endLsn: r.u64(), commitTimeMs: r.timestampMs() };
      }
    case 0x4f /* O */:
      return { tag: 'origin', originLsn: r.u64(), name: r.cstring() };
    case 0x52 /* R */:
      {
        const relationId = r.u32();
        const schema = r.cstring();
        const name = r.cstring();
        const identity = IDENTITY[r.u8()];
        if (identity === undefined) throw new PgoutputProtocolError('unknown replica identity setting');
        const count = r.u16();
        const columns: RelationColumn[] = [];
        for (let i = 0; i < count; i++) {
          const flags = r.u8();
          columns.push({ key: (flags & 1) === 1, name: r.cstring(), typeOid: r.u32(), typeModifier: r.i32() });
        }
        return { tag: 'relation', relationId, schema, name, replicaIdentity: identity, columns };
      }
    case 0x59 /* Y */:
      return { tag: 'type', typeOid: r.u32(), schema: r.cstring(), name: r.cstring() };
    case 0x49 /* I */:
      {
        const relationId = r.u32();
        r.expect(0x4e /* N */);
        return { tag: 'insert', relationId, new: r.tuple() };
      }
    case 0x55 /* U */:
      {
        const relationId = r.u32();
        let kind = r.u8();
        let key: TupleValue[] | undefined;
        let old: TupleValue[] | undefined;
        if (kind === 0x4b /* K */) key = r.tuple();
        else if (kind === 0x4f /* O */) old = r.tuple();
        if (key !== undefined || old !== undefined) kind = r.u8();
        if (kind !== 0x4e /* N */) throw new PgoutputProtocolError('update without a new tuple');
        const updated = r.tuple();
        return {
          tag: 'update',
          relationId,
          ...(key === undefined ? {} : { key }),
          ...(old === undefined ? {} : { old }),
          new: updated,
        };
      }
    case 0x44 /* D */:
      {
        const relationId = r.u32();
        const kind = r.u8();
        if (kind === 0x4b /* K */) return { tag: 'delete', relationId, key: r.tuple() };
        if (kind === 0x4f /* O */) return { tag: 'delete', relationId, old: r.tuple() };
        throw new PgoutputProtocolError('delete without a key or old tuple');
      }
    case 0x54 /* T */:
      {
        const count = r.u32();
        const options = r.u8();
        const relationIds: number[] = [];
        for (let i = 0; i < count; i++) relationIds.push(r.u32());
        return { tag: 'truncate', relationIds, cascade: (options & 1) === 1, restartIdentity: (options & 2) === 2 };
      }
    case 0x4d /* M */:
      {
        const flags = r.u8();
        const lsn = r.u64();
        const prefix = r.cstring();
        const length = r.u32();
        return { tag: 'message', transactional: (flags & 1) === 1, lsn, prefix, content: r.bytes(length) };
      }
    default:
      throw new PgoutputProtocolError(`unexpected pgoutput message ${JSON.stringify(String.fromCharCode(tag))}`);
  }
}

class Reader {
  readonly #b: Buffer;
  #p: number;

  constructor(buffer: Buffer, offset: number) {
    this.#b = buffer;
    this.#p = offset;
  }

  #need(n: number): void {
    if (this.#p + n > this.#b.length) throw new PgoutputProtocolError('message ends early');
  }

  u8(): number {
    this.#need(1);
    return this.#b[this.#p++] as number;
  }

  expect(byte: number): void {
    if (this.u8() !== byte) throw new PgoutputProtocolError(`expected ${JSON.stringify(String.fromCharCode(byte))}`);
  }

  u16(): number {
    this.#need(2);
    const v = this.#b.readUInt16BE(this.#p);
    this.#p += 2;
    return v;
  }

  u32(): number {
    this.#need(4);
    const v = this.#b.readUInt32BE(this.#p);
    this.#p += 4;
    return v;
  }

  i32(): number {
    this.#need(4);
    const v = this.#b.readInt32BE(this.#p);
    this.#p += 4;
    return v;
  }

  u64(): bigint {
    this.#need(8);
    const v = this.#b.readBigUInt64BE(this.#p);
    this.#p += 8;
    return v;
  }

  timestampMs(): number {
    this.#need(8);
    // Microseconds since 2000-01-01 stay below 2^53 for 285 years: a Number holds them exactly.
    const us = this.#b.readInt32BE(this.#p) * 2 ** 32 + this.#b.readUInt32BE(this.#p + 4);
    this.#p += 8;
    return Math.floor(us / 1000) + POSTGRES_EPOCH_MS;
  }

  cstring(): string {
    const end = this.#b.indexOf(0, this.#p);
    if (end === -1) throw new PgoutputProtocolError('unterminated string');
    const s = this.#b.toString('utf8', this.#p, end);
    this.#p = end + 1;
    return s;
  }

  bytes(n: number): Buffer {
    this.#need(n);
    const out = this.#b.subarray(this.#p, this.#p + n);
    this.#p += n;
    return out;
  }

  tuple(): TupleValue[] {
    const count = this.u16();
    const values: TupleValue[] = new Array(count);
    for (let i = 0; i < count; i++) {
      const kind = this.u8();
      if (kind === 0x74 /* t */) {
        const length = this.u32();
        this.#need(length);
        values[i] = this.#b.toString('utf8', this.#p, this.#p + length);
        this.#p += length;
      } else if (kind === 0x6e /* n */) {
        values[i] = null;
      } else if (kind === 0x75 /* u */) {
        values[i] = undefined;
      } else {
        // 'b' (binary) is sent only when asked for with `binary 'true'`, which this client never does.
        throw new PgoutputProtocolError(`unexpected tuple value kind ${JSON.stringify(String.fromCharCode(kind))}`);
      }
    }
    return values;
  }
}
