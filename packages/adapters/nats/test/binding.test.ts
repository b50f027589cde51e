import { MsgHdrsImpl, headers as natsHeaders } from '@nats-io/nats-core';
import { describe, expect, it } from 'vitest';
import { ENCODED_HEADER, fromNatsHeaders, KEY_HEADER, MSG_ID_HEADER, toNatsHeaders } from '../src/binding.js';

describe('NATS headers', () => {
  it('round-trips values NATS would trim or refuse, the key and the id', () => {
    const source = { 'ce-id': 'a1', 'ce-subject': ' padded ', 'ce-note': 'two\r\nlines', 'ce-plain': 'caf\u00e9', empty: '' };
    const out = toNatsHeaders('msg-1', source, ' key ');
    expect(out.get(MSG_ID_HEADER)).toBe('msg-1');
    expect(out.get('ce-plain')).toBe('caf\u00e9');
    expect(out.get(ENCODED_HEADER).split(',').sort()).toEqual(['ce-note', 'ce-subject', 'x-sb-key']);
    const back = fromNatsHeaders(MsgHdrsImpl.decode((out as MsgHdrsImpl).encode()));
    expect(back).toEqual({ id: 'msg-1', key: ' key ', headers: source });
  });

  it('encodes exactly what header-by-header `set` calls would', () => {
    const source = { 'ce-specversion': '1.0', 'ce-type': 'a.b', 'content-type': 'application/json' };
    const expected = natsHeaders();
    for (const [name, value] of Object.entries(source)) expected.set(name, value);
    expected.set(KEY_HEADER, 'k');
    expected.set(MSG_ID_HEADER, 'id-1');
    const built = toNatsHeaders('id-1', source, 'k') as MsgHdrsImpl;
    expect(new TextDecoder().decode(built.encode())).toBe(new TextDecoder().decode((expected as MsgHdrsImpl).encode()));
  });

  it('refuses a header name NATS cannot carry, with the client error', () => {
    expect(() => toNatsHeaders('id', { 'bad:name': 'v' }, undefined)).toThrow(/not a valid character/);
  });

  it('reads headers of a message without the Switchboard headers', () => {
    const plain = natsHeaders();
    plain.set('x-a', '1');
    expect(fromNatsHeaders(plain)).toEqual({ id: '', key: undefined, headers: { 'x-a': '1' } });
  });
});
