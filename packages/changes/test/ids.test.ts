import { describe, expect, it } from 'vitest';
import { uuidV5 } from '../src/ids.js';
import { CHANGE_ID_NAMESPACE, changeId, formatLsn, parseLsn } from '../src/index.js';

describe('change ids', () => {
  it('UUIDv5 matches the RFC 9562 test vector (DNS namespace, www.example.com)', () => {
    const dns = Buffer.from('6ba7b8109dad11d180b400c04fd430c8', 'hex');
    expect(uuidV5(dns, 'www.example.com')).toBe('2ed6657d-e927-568b-95e1-2665a8aea6a2');
  });

  it('is the UUIDv5 of system id, table, commit LSN and position, so a change read again keeps its id', () => {
    const id = changeId('7401234567890123456', 'public.orders', parseLsn('0/1A2B3C8'), 3);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(id).toBe(uuidV5(Buffer.from(CHANGE_ID_NAMESPACE.replaceAll('-', ''), 'hex'), '7401234567890123456/public.orders/0/1A2B3C8/3'));
    expect(changeId('7401234567890123456', 'public.orders', parseLsn('0/1A2B3C8'), 3)).toBe(id);
  });

  it('differs when any part differs', () => {
    const base = ['7401234567890123456', 'public.orders', parseLsn('0/1A2B3C8'), 3] as const;
    const ids = new Set([
      changeId(...base),
      changeId('7401234567890123457', base[1], base[2], base[3]),
      changeId(base[0], 'public.refunds', base[2], base[3]),
      changeId(base[0], base[1], parseLsn('0/1A2B3C9'), base[3]),
      changeId(base[0], base[1], base[2], 4),
    ]);
    expect(ids.size).toBe(5);
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
