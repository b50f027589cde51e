import { isSwitchboardError } from '@switchboard/core';
import { describe, expect, it } from 'vitest';
import { ESCAPED_PROPERTY, fromMqttProperties, ID_PROPERTY, KEY_PROPERTY, toMqttProperties } from '../src/binding.js';

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

describe('MQTT binding: properties', () => {
  it('puts content-type in the Content Type property, attributes unprefixed in user properties, id and key under x-sb-*', () => {
    const headers = {
      specversion: '1.0',
      id: 'e-1',
      type: 'com.example.created',
      subject: 'Euro € 😀 "x" 100%',
      'content-type': 'application/json; charset=utf-8',
    };
    const properties = toMqttProperties('m-1', headers, 'k');
    expect(properties.contentType).toBe('application/json; charset=utf-8');
    expect(properties.userProperties).toEqual({
      specversion: '1.0',
      id: 'e-1',
      type: 'com.example.created',
      subject: 'Euro € 😀 "x" 100%',
      [KEY_PROPERTY]: 'k',
      [ID_PROPERTY]: 'm-1',
    });
    expect(fromMqttProperties(properties)).toEqual({ id: 'm-1', key: 'k', headers });
  });

  it('carries plain headers unchanged, without the escape list', () => {
    const headers = { 'x-unicode': 'héllo — 你好 ✓', 'x-empty': '', 'x-spaces': '  a b  ', 'x-pct': '50%' };
    const properties = toMqttProperties('m-1', headers, undefined);
    expect(properties).toEqual({ userProperties: { ...headers, [ID_PROPERTY]: 'm-1' } });
    expect(fromMqttProperties(properties)).toEqual({ id: 'm-1', key: undefined, headers });
  });

  it('escapes only the entries that hold a character MQTT refuses, lists them, and restores them', () => {
    const headers = {
      type: 'com.example.created',
      subject: '100% %25',
      'x-lines': 'a\r\nb',
      'x-nul': '\u0000',
      'x-del': '\u007f\u0085\u009f',
      'x-nonchar': '\ufdd0\ufffe\uffff\u{10ffff}',
      'x-lone-high': '\ud800',
      'x-lone-low': 'a\udc00',
      'x-pair': '😀',
      'x-percent': '%25 %u0041 %',
      '\u0007bell,comma': 'name escaped too',
    };
    const properties = toMqttProperties('id\u0001', headers, 'k\n');
    const user = properties.userProperties;
    for (const [name, value] of Object.entries(user)) {
      expect(refusedUnits(name), name).toEqual([]);
      expect(refusedUnits(value), value).toEqual([]);
    }
    // Entries MQTT can carry are left exactly as they are, `%` included.
    expect(user.type).toBe('com.example.created');
    expect(user.subject).toBe('100% %25');
    expect(user['x-pair']).toBe('😀');
    expect(user['x-percent']).toBe('%25 %u0041 %');
    expect(user[ESCAPED_PROPERTY]!.split(',').map(decodeURIComponent).sort()).toEqual(
      ['%u0007bell,comma', 'x-lines', 'x-nul', 'x-del', 'x-nonchar', 'x-lone-high', 'x-lone-low', ID_PROPERTY, KEY_PROPERTY].sort(),
    );
    expect(fromMqttProperties(properties)).toEqual({ id: 'id\u0001', key: 'k\n', headers });
  });

  it('drops x-sb-* headers given by the caller, takes the first of repeated properties, reads nothing as nothing', () => {
    const properties = toMqttProperties('m', { [ID_PROPERTY]: 'forged', [KEY_PROPERTY]: 'forged', [ESCAPED_PROPERTY]: 'x' }, undefined);
    expect(properties).toEqual({ userProperties: { [ID_PROPERTY]: 'm' } });
    expect(fromMqttProperties({ userProperties: { a: ['1', '2'], [ID_PROPERTY]: 'm' } })).toEqual({
      id: 'm',
      key: undefined,
      headers: { a: '1' },
    });
    expect(fromMqttProperties(undefined)).toEqual({ id: '', key: undefined, headers: {} });
    expect(fromMqttProperties({})).toEqual({ id: '', key: undefined, headers: {} });
  });

  it('reads a foreign message: no transport id, unknown x-sb-* ignored, Content Type over a content-type user property', () => {
    const received = fromMqttProperties({
      contentType: 'application/cloudevents+json',
      userProperties: { 'x-sb-other': 'ignored', 'Content-Type': 'text/plain', note: 'kept' },
    });
    expect(received).toEqual({ id: '', key: undefined, headers: { note: 'kept', 'content-type': 'application/cloudevents+json' } });
  });

  it('sends an empty transport id as no x-sb-id at all', () => {
    expect(toMqttProperties('', { type: 't' }, undefined)).toEqual({ userProperties: { type: 't' } });
  });

  it('refuses a value MQTT cannot frame (over 65 535 bytes) with SB_MESSAGE_TOO_LARGE', () => {
    let error: unknown;
    try {
      toMqttProperties('m', { big: 'é'.repeat(40_000) }, undefined);
    } catch (caught) {
      error = caught;
    }
    expect(isSwitchboardError(error, 'SB_MESSAGE_TOO_LARGE')).toBe(true);
    expect(() => toMqttProperties('m', { fits: 'a'.repeat(65_535) }, undefined)).not.toThrow();
  });
});
