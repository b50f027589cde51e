import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { uuidV5 } from '../src/ids.js';
import { CHANGE_ID_NAMESPACE, ChangeIds, changeId, formatLsn, parseLsn } from '../src/index.js';

const SYSTEM = '7401234567890123456';

/** The bits of a UUID, as a bigint. */
const bitsOf = (uuid: string) => BigInt(`0x${uuid.replaceAll('-', '')}`);

describe('change ids', () => {
  it('UUIDv5 matches the RFC 9562 test vector (DNS namespace, www.example.com)', () => {
    const dns = Buffer.from('6ba7b8109dad11d180b400c04fd430c8', 'hex');
    expect(uuidV5(dns, 'www.example.com')).toBe('2ed6657d-e927-568b-95e1-2665a8aea6a2');
  });

  it('is a UUIDv8 of commit LSN, position and table tag, in that order, bit for bit', () => {
    const lsn = parseLsn('16/B374D84C');
    const id = changeId(SYSTEM, 'public.orders', lsn, 0x123456);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const bits = bitsOf(id);
    // Take the version (4 bits at 76) and the variant (2 bits at 62) out: what is left is LSN, position, tag.
    const payload = ((bits >> 80n) << 74n) | (((bits >> 64n) & 0xfffn) << 62n) | (bits & ((1n << 62n) - 1n));
    expect(payload >> 58n).toBe(lsn);
    expect((payload >> 34n) & 0xffffffn).toBe(0x123456n);
    const tag =
      BigInt(
        `0x${createHash('sha1')
          .update(Buffer.from(CHANGE_ID_NAMESPACE.replaceAll('-', ''), 'hex'))
          .update(`${SYSTEM}/public.orders`)
          .digest('hex')
          .slice(0, 10)}`,
      ) >> 6n;
    expect(payload & ((1n << 34n) - 1n)).toBe(tag);
    // The LSN reads off the id.
    expect(id.startsWith('00000016-b374-8d84-')).toBe(true);
  });

  it('the same change always gets the same id; any other part gives another', () => {
    const lsn = parseLsn('0/1A2B3C8');
    const id = changeId(SYSTEM, 'public.orders', lsn, 3);
    expect(new ChangeIds(SYSTEM, 'public.orders').id(lsn, 3)).toBe(id);
    const ids = new Set([
      id,
      changeId('7401234567890123457', 'public.orders', lsn, 3),
      changeId(SYSTEM, 'public.refunds', lsn, 3),
      changeId(SYSTEM, 'public.orders', parseLsn('0/1A2B3C9'), 3),
      changeId(SYSTEM, 'public.orders', lsn, 4),
    ]);
    expect(ids.size).toBe(5);
  });

  it("one table's ids sort in commit order, then position", () => {
    const ids = new ChangeIds(SYSTEM, 'public.orders');
    const inOrder = [
      ids.id(parseLsn('0/1A2B3C8'), 0),
      ids.id(parseLsn('0/1A2B3C8'), 1),
      ids.id(parseLsn('0/1A2B3C8'), 2 ** 20),
      ids.id(parseLsn('0/1A2B3C9'), 0),
      ids.id(parseLsn('1/0'), 0),
      ids.id(parseLsn('FFFFFFFF/FFFFFFFF'), 2 ** 24 - 1),
    ];
    expect([...inOrder].sort()).toEqual(inOrder);
  });

  it('a position past 2^24 falls back to the UUIDv5 of the same parts', () => {
    const lsn = parseLsn('0/1A2B3C8');
    expect(changeId(SYSTEM, 'public.orders', lsn, 2 ** 24)).toBe(
      uuidV5(Buffer.from(CHANGE_ID_NAMESPACE.replaceAll('-', ''), 'hex'), `${SYSTEM}/public.orders/0/1A2B3C8/${2 ** 24}`),
    );
  });
});

describe('LSNs', () => {
  it('parse and format as PostgreSQL writes them', () => {
    expect(parseLsn('0/0')).toBe(0n);
    expect(parseLsn('16/B374D848')).toBe((0x16n << 32n) | 0xb374d848n);
    expect(formatLsn(parseLsn('16/b374d848'))).toBe('16/B374D848');
    expect(formatLsn(0xffffffffffffffffn)).toBe('FFFFFFFF/FFFFFFFF');
    expect(() => parseLsn('16-B374D848')).toThrow(TypeError);
    expect(() => parseLsn('123456789/0')).toThrow(TypeError);
  });
});
