import type { OutgoingMessage } from '@switchboard/core';
import { describe, expect, it } from 'vitest';
import { decodeFrame, encodeFrame, encodeMessage, isFrame, plainMessageId } from '../src/pubsub-codec.js';

function message(overrides: Partial<OutgoingMessage> = {}): OutgoingMessage {
  return {
    id: 'm-1',
    topic: 't',
    headers: { 'content-type': 'application/json', 'ce-note': 'caf\u00e9 "quoted"' },
    body: new TextEncoder().encode('{"a":1}'),
    ...overrides,
  };
}

describe('Redis pub/sub frames', () => {
  it('round-trips id, nonce, headers, key and body, frozen headers or not', () => {
    const frozen = Object.freeze({ 'content-type': 'application/cloudevents+json; charset=utf-8' });
    const cases = [message(), message({ key: 'k \u00e9' }), message({ headers: frozen }), message({ headers: frozen, id: 'id "2"' })];
    for (const m of cases) {
      for (let round = 0; round < 2; round++) {
        const frame = encodeFrame(m, 'n1');
        const decoded = decodeFrame(frame);
        expect(decoded).toEqual({ id: m.id, nonce: 'n1', headers: m.headers, key: m.key, body: expect.anything() });
        expect(Buffer.from(decoded!.body).toString()).toBe('{"a":1}');
      }
    }
  });

  it('writes the metadata as JSON.stringify would', () => {
    const m = message({ key: 'k' });
    const frame = encodeFrame(m, 'n2');
    const length = frame.readUInt32BE(3);
    expect(frame.toString('utf8', 7, 7 + length)).toBe(JSON.stringify({ i: m.id, n: 'n2', h: m.headers, k: 'k' }));
  });

  it('refuses bytes that are not a frame', () => {
    expect(decodeFrame(Buffer.from('hello'))).toBeUndefined();
  });

  it('sends a structured CloudEvent as its document alone, and frames anything else', () => {
    const document = '{"specversion":"1.0","id":"1","source":"/s","type":"t"}';
    const structured = message({
      headers: Object.freeze({ 'content-type': 'application/cloudevents+json; charset=utf-8' }),
      body: new TextEncoder().encode(document),
    });
    expect(encodeMessage(structured, 'n1').toString()).toBe(document);
    // A key, another header or another content type cannot travel without a frame.
    const others: OutgoingMessage[] = [
      { ...structured, key: 'k' },
      { ...structured, headers: { 'content-type': 'application/cloudevents+json', 'x-note': 'a' } },
      { ...structured, headers: { 'content-type': 'application/json' } },
      { ...structured, headers: {} },
    ];
    for (const other of others) {
      expect(decodeFrame(encodeMessage(other, 'n2'))).toMatchObject({ id: other.id, nonce: 'n2', headers: other.headers, key: other.key });
    }
  });

  it('tells plain messages (what a foreign PUBLISH sends) from frames, and names a plain one by its document id', () => {
    const bytes = Buffer.from('{"specversion":"1.0","id":"p-1","source":"/s","type":"t"}');
    expect(isFrame(bytes)).toBe(false);
    expect(isFrame(encodeFrame(message(), 'n3'))).toBe(true);
    expect(plainMessageId(bytes)).toBe('p-1');
    expect(plainMessageId(Buffer.from('not json'))).toBe('');
    expect(plainMessageId(Buffer.from('{"id":7}'))).toBe('');
    // A frame whose metadata is broken is not read (the member drops it as malformed).
    const broken = encodeFrame(message(), 'n3');
    broken.writeUInt32BE(1_000_000, 3);
    expect(decodeFrame(broken)).toBeUndefined();
  });
});
