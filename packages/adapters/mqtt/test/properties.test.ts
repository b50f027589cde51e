import { isSwitchboardError } from '@switchboard/core';
import { describe, expect, it } from 'vitest';
import { ENCODING_PROPERTY, fromUserProperties, ID_PROPERTY, KEY_PROPERTY, toUserProperties } from '../src/index.js';

/** Code units MQTT strings must not carry raw: C0/C1 controls, U+FFFE/U+FFFF, any surrogate (only 'x-pair' keeps a valid pair). */
function refusedUnits(text: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const pair = c >= 0xd800 && c <= 0xdbff && text.charCodeAt(i + 1) >= 0xdc00 && text.charCodeAt(i + 1) <= 0xdfff;
    if (pair && text.codePointAt(i) === 0x1f600) {
      i++;
      continue;
    }
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || c === 0xfffe || c === 0xffff || (c >= 0xd800 && c <= 0xdfff)) out.push(c);
  }
  return out;
}

describe('user properties', () => {
  it('carries plain headers, the MessageId and the key unchanged, without the encoding marker', () => {
    const headers = {
      'ce-type': 'com.example.created',
      'x-unicode': 'héllo — 你好 ✓',
      'x-empty': '',
      'x-spaces': '  a b  ',
      'x-pct': '50%',
    };
    const properties = toUserProperties('m-1', headers, 'k');
    expect(properties).toEqual({ ...headers, [KEY_PROPERTY]: 'k', [ID_PROPERTY]: 'm-1' });
    expect(fromUserProperties(properties)).toEqual({ id: 'm-1', key: 'k', headers });
  });

  it('escapes every name and value of a message that holds a character MQTT refuses, and restores them', () => {
    const headers = {
      'x-lines': 'a\r\nb',
      'x-nul': '\u0000',
      'x-del': '\u007f\u0085\u009f',
      'x-nonchar': '\ufdd0\ufffe\uffff\u{10ffff}',
      'x-lone-high': '\ud800',
      'x-lone-low': 'a\udc00',
      'x-pair': '😀',
      'x-percent': '%25 %u0041 %',
      '\u0007bell': 'name escaped too',
    };
    const properties = toUserProperties('id\u0001', headers, 'k\n');
    expect(properties[ENCODING_PROPERTY]).toBe('pct');
    for (const [name, value] of Object.entries(properties)) {
      expect(refusedUnits(name), name).toEqual([]);
      expect(refusedUnits(value), value).toEqual([]);
    }
    expect(properties['x-pair']).toBe('😀');
    expect(fromUserProperties(properties)).toEqual({ id: 'id\u0001', key: 'k\n', headers });
  });

  it('ignores headers that use the reserved names and takes the first of repeated properties', () => {
    const properties = toUserProperties('m', { [ID_PROPERTY]: 'forged', [KEY_PROPERTY]: 'forged', [ENCODING_PROPERTY]: 'pct' }, undefined);
    expect(properties).toEqual({ [ID_PROPERTY]: 'm' });
    expect(fromUserProperties({ a: ['1', '2'], [ID_PROPERTY]: 'm' })).toEqual({ id: 'm', key: undefined, headers: { a: '1' } });
    expect(fromUserProperties(undefined)).toEqual({ id: '', key: undefined, headers: {} });
  });

  it('refuses a value MQTT cannot frame (over 65 535 bytes) with SB_MESSAGE_TOO_LARGE', () => {
    let error: unknown;
    try {
      toUserProperties('m', { big: 'é'.repeat(40_000) }, undefined);
    } catch (caught) {
      error = caught;
    }
    expect(isSwitchboardError(error, 'SB_MESSAGE_TOO_LARGE')).toBe(true);
    expect(() => toUserProperties('m', { fits: 'a'.repeat(65_535) }, undefined)).not.toThrow();
  });
});
