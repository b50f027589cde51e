import type { Msg } from '@nats-io/nats-core';
import { MsgHdrsImpl } from '@nats-io/nats-core';
import { MsgImpl } from '@nats-io/nats-core/internal';
import { cloudEventsBindings, decodeCloudEvent } from '@switchboard/core';
import { describe, expect, it } from 'vitest';
import { fromNatsHeaders, MSG_ID_HEADER, toNatsHeaders } from '../src/binding.js';
import { coreHeaders, messageHeaders, readCoreHeaders, statusOf } from '../src/core-headers.js';

const text = (headers: unknown) => new TextDecoder().decode((headers as MsgHdrsImpl).encode());

/** A received message as the client builds it: the header block, then the body, in one buffer. */
function received(block: Uint8Array, body: Uint8Array): Msg {
  const data = new Uint8Array(block.byteLength + body.byteLength);
  data.set(block, 0);
  data.set(body, block.byteLength);
  const publisher = { publish: () => {} } as unknown as ConstructorParameters<typeof MsgImpl>[2];
  return new MsgImpl({ subject: new TextEncoder().encode('s'), sid: 1, hdr: block.byteLength, size: data.byteLength }, data, publisher);
}

describe('core NATS headers', () => {
  it('encodes a frozen headers object exactly as the general path, once per object', () => {
    const source = Object.freeze({ 'content-type': 'application/cloudevents+json; charset=utf-8', 'x-note': 'caf\u00e9' });
    for (const id of ['0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b', 'another-id']) {
      const fast = coreHeaders(id, source, undefined);
      expect(text(fast)).toBe(text(toNatsHeaders(id, source, undefined)));
      expect(fast.get(MSG_ID_HEADER)).toBe(id);
      expect(fast.get('content-type')).toBe(source['content-type']);
    }
  });

  it('takes the general path for values to escape, a key, an id the client would alter, or headers that may change', () => {
    const cases: [string, Record<string, string>, string | undefined][] = [
      ['id-1', Object.freeze({ 'ce-subject': ' padded ' }), undefined],
      ['id-2', Object.freeze({ 'content-type': 'application/json' }), 'k 1'],
      [' id-3 ', Object.freeze({ 'content-type': 'application/json' }), undefined],
      ['id-4', { 'content-type': 'application/json' }, undefined],
    ];
    for (const [id, source, key] of cases) {
      const fast = coreHeaders(id, source, key);
      expect(text(fast)).toBe(text(toNatsHeaders(id, source, key)));
      expect(fromNatsHeaders(MsgHdrsImpl.decode((fast as MsgHdrsImpl).encode()))).toEqual(
        fromNatsHeaders(MsgHdrsImpl.decode((toNatsHeaders(id, source, key) as MsgHdrsImpl).encode())),
      );
    }
  });

  it('re-encodes after a change, like any MsgHdrsImpl', () => {
    const fast = coreHeaders('id-5', Object.freeze({ a: '1' }), undefined);
    fast.set('b', '2');
    expect(text(fast)).toBe(`NATS/1.0\r\na: 1\r\n${MSG_ID_HEADER}: id-5\r\nb: 2\r\n\r\n`);
  });

  it('reads received headers as fromNatsHeaders does', () => {
    const body = new TextEncoder().encode('{"a":1}');
    const blocks: Uint8Array[] = [
      (
        toNatsHeaders(
          'm-1',
          { 'ce-id': 'a1', 'ce-subject': ' padded ', 'ce-note': 'two\r\nlines', 'ce-plain': 'caf\u00e9', empty: '' },
          ' key ',
        ) as MsgHdrsImpl
      ).encode(),
      (coreHeaders('m-2', Object.freeze({ 'content-type': 'application/cloudevents+json' }), undefined) as MsgHdrsImpl).encode(),
      new TextEncoder().encode('NATS/1.0\r\nx-a:  spaced \t\r\nx-a: second\r\nno-colon\r\nNats-Msg-Id: m-3\r\nNats-Msg-Id: m-4\r\n\r\n'),
      new TextEncoder().encode('NATS/1.0 503\r\n\r\n'),
    ];
    for (const block of blocks) {
      const msg = received(block, body);
      expect(readCoreHeaders(msg)).toEqual(fromNatsHeaders(MsgHdrsImpl.decode(block)));
      expect(msg.data).toEqual(body);
    }
    const bare = new MsgImpl({ subject: new TextEncoder().encode('s'), sid: 1, hdr: -1, size: 2 }, body, {} as never);
    expect(readCoreHeaders(bare)).toEqual({ id: '', key: undefined, headers: {} });
  });

  it('reads the forms other producers send (Ce- casing, quoted strings, lower-case hex) exactly as fromNatsHeaders, for the codec to decode', () => {
    const body = new TextEncoder().encode('{"a":1}');
    const block = new TextEncoder().encode(
      [
        'NATS/1.0',
        'CE-SPECVERSION: 1.0',
        'Ce-Id: "id with \\"quotes\\" and space"',
        'Ce-Source: /foreign',
        'ce-type: com.example.someevent',
        'Ce-Subject: "Euro %e2%82%ac \\"x\\" 100%25"',
        'ce-datacontenttype: application/json',
        'x-sb-key: k-1',
        'x-sb-future: dropped',
        '',
        '',
      ].join('\r\n'),
    );
    const read = readCoreHeaders(received(block, body));
    expect(read).toEqual(fromNatsHeaders(MsgHdrsImpl.decode(block)));
    expect(read.key).toBe('k-1');
    expect(Object.keys(read.headers)).not.toContain('x-sb-future');
    const event = decodeCloudEvent(read.headers, body, cloudEventsBindings.nats);
    expect(event).toMatchObject({
      specversion: '1.0',
      id: 'id with "quotes" and space',
      source: '/foreign',
      subject: 'Euro € "x" 100%',
      datacontenttype: 'application/json',
      data: { a: 1 },
    });
  });

  it('reads a message without headers as no headers, which the NATS binding reads as a structured event (pre-2.2)', () => {
    const body = new TextEncoder().encode(JSON.stringify({ specversion: '1.0', id: 'old-1', source: '/old', type: 't' }));
    const bare = new MsgImpl({ subject: new TextEncoder().encode('s'), sid: 1, hdr: -1, size: body.byteLength }, body, {} as never);
    const read = readCoreHeaders(bare);
    expect(read).toEqual({ id: '', key: undefined, headers: {} });
    expect(decodeCloudEvent(read.headers, bare.data, cloudEventsBindings.nats)).toEqual({
      specversion: '1.0',
      id: 'old-1',
      source: '/old',
      type: 't',
    });
  });

  it('refuses a received header name NATS cannot carry, with the client error', () => {
    const msg = received(new TextEncoder().encode('NATS/1.0\r\nbad name: v\r\n\r\n'), new Uint8Array(0));
    expect(() => readCoreHeaders(msg)).toThrow(/not a valid character/);
  });

  it('writes per-message headers (with an added header, or without an id) exactly as the general path', () => {
    const deadline = ['sb-deadline', '1796000000000'] as const;
    const cases: [string, Record<string, string>, string | undefined, readonly [string, string] | undefined][] = [
      ['0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b', { 'ce-id': 'a1', 'ce-type': 't', 'ce-note': 'caf\u00e9' }, undefined, deadline],
      ['', { 'ce-id': 'r1', 'ce-datacontenttype': 'application/json' }, undefined, undefined],
      ['id-1', { 'ce-subject': ' padded ' }, undefined, deadline],
      ['id-2', { 'ce-note': 'two\r\nlines' }, undefined, undefined],
      ['id-3', { 'ce-id': 'a1' }, 'k 1', deadline],
      [' id-4 ', { 'ce-id': 'a1' }, undefined, deadline],
      ['id-5', { 'ce-id': 'a1', 'x-sb-key': 'own', [MSG_ID_HEADER]: 'theirs' }, undefined, deadline],
      ['id-6', { 'ce-id': 'a1', 'sb-deadline': '1' }, undefined, deadline],
      ['', {}, undefined, undefined],
    ];
    for (const [id, source, key, extra] of cases) {
      const general = toNatsHeaders(id, extra === undefined ? source : { ...source, [extra[0]]: extra[1] }, key);
      const fast = messageHeaders(id, source, key, extra);
      expect(text(fast)).toBe(text(general));
      for (const name of general.keys()) expect(fast.get(name)).toBe(general.get(name));
      expect(fast.keys()).toEqual(general.keys());
    }
  });

  it('refuses a header name NATS cannot carry when writing per-message headers, with the client error', () => {
    expect(() => messageHeaders('id-1', { 'bad name': 'v' }, undefined, undefined)).toThrow(/not a valid character/);
  });

  it('reads the status of a received message as the client does', () => {
    const body = new Uint8Array(0);
    for (const block of [
      'NATS/1.0 503\r\n\r\n',
      'NATS/1.0 408 Request Timeout\r\n\r\n',
      'NATS/1.0\r\nce-id: a\r\n\r\n',
      'NATS/1.0\r\n\r\n',
    ]) {
      const bytes = new TextEncoder().encode(block);
      expect(statusOf(received(bytes, body))).toBe(MsgHdrsImpl.decode(bytes).code);
    }
    const bare = new MsgImpl({ subject: new TextEncoder().encode('s'), sid: 1, hdr: -1, size: 0 }, body, {} as never);
    expect(statusOf(bare)).toBe(0);
  });
});
