import { describe, expect, it } from 'vitest';
import { decodePgoutput, PgoutputProtocolError } from '../src/index.js';

/** A pgoutput Insert of relation 16385 with values `7`, NULL, an unchanged TOAST value and `héllo`. */
function insertMessage(): Buffer {
  const text = (s: string) => {
    const bytes = Buffer.from(s, 'utf8');
    const head = Buffer.alloc(5);
    head[0] = 0x74;
    head.writeUInt32BE(bytes.length, 1);
    return Buffer.concat([head, bytes]);
  };
  const head = Buffer.alloc(8);
  head[0] = 0x49; // I
  head.writeUInt32BE(16385, 1);
  head[5] = 0x4e; // N
  head.writeUInt16BE(4, 6);
  return Buffer.concat([head, text('7'), Buffer.from([0x6e]), Buffer.from([0x75]), text('héllo')]);
}

describe('pgoutput decoder (see the integration test for real server output)', () => {
  it('reads a tuple: text, NULL, unchanged TOAST, UTF-8', () => {
    expect(decodePgoutput(insertMessage())).toEqual({ tag: 'insert', relationId: 16385, new: ['7', null, undefined, 'héllo'] });
  });

  it('reads from an offset (the XLogData header precedes the message)', () => {
    const payload = Buffer.concat([Buffer.alloc(25, 0xff), insertMessage()]);
    expect(decodePgoutput(payload, 25)).toMatchObject({ tag: 'insert', relationId: 16385 });
  });

  it('refuses truncated messages, unknown tags and binary values', () => {
    const message = insertMessage();
    for (let end = 1; end < message.length; end++) {
      expect(() => decodePgoutput(message.subarray(0, end))).toThrow(PgoutputProtocolError);
    }
    expect(() => decodePgoutput(Buffer.from([0x53, 0, 0, 0, 1, 0]))).toThrow(/unexpected pgoutput message "S"/);
    const binary = Buffer.from(message);
    binary[8] = 0x62; // 'b'
    expect(() => decodePgoutput(binary)).toThrow(/tuple value kind "b"/);
  });
});
