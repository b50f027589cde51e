import type { MsgHdrs } from '@nats-io/nats-core';
import { headers as natsHeaders } from '@nats-io/nats-core';
import type { Headers } from '@switchboard/core';

/** Header that carries the ordering key. */
export const KEY_HEADER = 'Switchboard-Key';
/** Names of headers whose values were percent-encoded because NATS would alter them. */
export const ENCODED_HEADER = 'Switchboard-Encoded';
/** Set by JetStream from the `msgID` publish option. */
export const MSG_ID_HEADER = 'Nats-Msg-Id';

const RESERVED = new Set([KEY_HEADER, ENCODED_HEADER, MSG_ID_HEADER]);

/** NATS trims header values and refuses CR/LF; such values travel percent-encoded. */
function needsEncoding(value: string): boolean {
  return /[\r\n]/.test(value) || value.trim() !== value;
}

export function toNatsHeaders(id: string, source: Headers, key: string | undefined): MsgHdrs {
  const out = natsHeaders();
  const encoded: string[] = [];
  const put = (name: string, value: string) => {
    if (needsEncoding(value)) {
      encoded.push(name);
      out.set(name, encodeURIComponent(value));
    } else {
      out.set(name, value);
    }
  };
  for (const [name, value] of Object.entries(source)) {
    if (!RESERVED.has(name)) put(name, value);
  }
  if (key !== undefined) put(KEY_HEADER, key);
  if (encoded.length > 0) out.set(ENCODED_HEADER, encoded.map(encodeURIComponent).join(','));
  out.set(MSG_ID_HEADER, id);
  return out;
}

export interface ReceivedHeaders {
  readonly id: string;
  readonly key: string | undefined;
  readonly headers: Headers;
}

export function fromNatsHeaders(source: MsgHdrs | undefined): ReceivedHeaders {
  const headers: Record<string, string> = {};
  if (source === undefined) return { id: '', key: undefined, headers };
  const encodedList = source.get(ENCODED_HEADER);
  const encoded = new Set(encodedList === '' ? [] : encodedList.split(',').map(decodeURIComponent));
  const read = (name: string): string => {
    const value = source.get(name);
    return encoded.has(name) ? decodeURIComponent(value) : value;
  };
  for (const name of source.keys()) {
    if (RESERVED.has(name)) continue;
    headers[name] = read(name);
  }
  return { id: source.get(MSG_ID_HEADER), key: source.has(KEY_HEADER) ? read(KEY_HEADER) : undefined, headers };
}
