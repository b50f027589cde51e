import { createHash, createHmac } from 'node:crypto';
import { newMessageId, SwitchboardError } from '@switchboard/core';
import { createHttpService, type HttpService } from '@switchboard/http';
import { createMemoryBroker, createMemoryDeadLetterStore, createMemoryReceiptStore } from '@switchboard/memory';
import { createMessaging, type Messaging } from '@switchboard/messaging';
import { afterEach, describe, expect, it } from 'vitest';
import { ledger } from './signing-suite.js';

const SECRET = 'billing-secret-of-at-least-32-bytes!';

/**
 * The canonical form written out from docs/security.md without any Switchboard code: what another
 * language's sender does. Attribute values are JSON strings, data the SHA-256 of its RFC 8785 text.
 */
function handSignature(attributes: Record<string, string>, canonicalData: string): string {
  const lines = Object.keys(attributes)
    .sort()
    .map((name) => `${name}=${JSON.stringify(attributes[name])}\n`);
  const digest = createHash('sha256').update(canonicalData, 'utf8').digest('hex');
  const canonical = `sbsig1\n${lines.join('')}data=${digest}\n`;
  return `hs256;billing-1;${createHmac('sha256', SECRET).update(canonical, 'utf8').digest('base64url')}`;
}

let http: HttpService | undefined;
let service: Messaging | undefined;

afterEach(async () => {
  await http?.close();
  await service?.close();
  http = undefined;
  service = undefined;
});

async function ledgerOverHttp(require?: boolean) {
  const deadLetters = createMemoryDeadLetterStore();
  const seen: { amount: number; memo: string }[] = [];
  service = createMessaging({
    broker: createMemoryBroker(),
    service: 'ledger',
    receipts: createMemoryReceiptStore(),
    deadLetters,
    signing: {
      verify: { keys: [{ id: 'billing-1', algorithm: 'hs256', secret: SECRET }], sources: { billing: ['billing-1'] } },
      ...(require === undefined ? {} : { require }),
    },
  });
  service.handle(ledger, 'entry.posted', (data) => {
    seen.push(data);
  });
  await service.start();
  http = createHttpService({ contract: ledger, handlers: {}, routes: service.routes() });
  const { url } = await http.listen();
  return { url: `${url}/events`, seen, deadLetters };
}

const time = '2026-12-02T06:00:00Z';
// Members out of order and with spaces, as another encoder may write them; RFC 8785 text below.
const body = '{ "memo": "hand signed, ünïcode", "amount": 5 }';
const canonicalData = '{"amount":5,"memo":"hand signed, ünïcode"}';

function binaryHeaders(id: string, signature: string | undefined): Record<string, string> {
  return {
    'content-type': 'application/json',
    'ce-specversion': '1.0',
    'ce-id': id,
    'ce-source': 'billing',
    'ce-type': 'ledger.entry.posted',
    'ce-time': time,
    ...(signature === undefined ? {} : { 'ce-sbsignature': signature }),
  };
}

describe('signed messages over POST /events', () => {
  it('takes an event signed by hand (canonical form and HMAC built in the test) in binary and structured mode', async () => {
    const { url, seen } = await ledgerOverHttp();
    const id = newMessageId();
    const attributes = {
      specversion: '1.0',
      id,
      source: 'billing',
      type: 'ledger.entry.posted',
      time,
      datacontenttype: 'application/json',
    };
    const binary = await fetch(url, { method: 'POST', headers: binaryHeaders(id, handSignature(attributes, canonicalData)), body });
    expect(binary.status).toBe(204);

    const id2 = newMessageId();
    const structured = `{"specversion":"1.0","id":${JSON.stringify(id2)},"source":"billing","type":"ledger.entry.posted","time":"${time}","datacontenttype":"application/json","subject":"ch/7","sbsignature":${JSON.stringify(
      handSignature({ ...attributes, id: id2, subject: 'ch/7' }, canonicalData),
    )},"data":${body}}`;
    const r2 = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/cloudevents+json' }, body: structured });
    expect(r2.status).toBe(204);
    expect(seen).toEqual([
      { amount: 5, memo: 'hand signed, ünïcode' },
      { amount: 5, memo: 'hand signed, ünïcode' },
    ]);
  });

  it('answers 403 SB_SIGNATURE_INVALID for an unsigned or wrongly signed event, runs nothing and keeps no dead letter (the sender is told)', async () => {
    const { url, seen, deadLetters } = await ledgerOverHttp();
    const id = newMessageId();
    const attributes = {
      specversion: '1.0',
      id,
      source: 'billing',
      type: 'ledger.entry.posted',
      time,
      datacontenttype: 'application/json',
    };
    const cases: [string | undefined, string][] = [
      [undefined, 'the event carries no signature (sbsignature)'],
      // Signed over other data than the body carries.
      [handSignature(attributes, '{"amount":500,"memo":"hand signed, ünïcode"}'), 'the signature does not match the event'],
      ['hs256;billing-9;AAAA', 'the key is not one the event source may sign with'],
      ['garbage', 'the signature attribute is not <algorithm>;<key id>;<signature>'],
    ];
    for (const [signature, detail] of cases) {
      const response = await fetch(url, { method: 'POST', headers: binaryHeaders(id, signature), body });
      expect(response.status).toBe(403);
      expect(response.headers.get('content-type')).toBe('application/problem+json');
      expect(await response.json()).toMatchObject({
        type: 'urn:switchboard:error:signature-invalid',
        code: 'SB_SIGNATURE_INVALID',
        status: 403,
        detail,
      });
    }
    expect(seen).toEqual([]);
    expect((await deadLetters.list()).items).toEqual([]);
    // The id was not squatted: the genuine event is taken afterwards.
    const ok = await fetch(url, { method: 'POST', headers: binaryHeaders(id, handSignature(attributes, canonicalData)), body });
    expect(ok.status).toBe(204);
    expect(seen).toHaveLength(1);
  });

  it('refuses a whole batch with one forged event before any of it runs', async () => {
    const { url, seen } = await ledgerOverHttp();
    const event = (id: string, signature: string) =>
      `{"specversion":"1.0","id":"${id}","source":"billing","type":"ledger.entry.posted","time":"${time}","datacontenttype":"application/json","sbsignature":"${signature}","data":${body}}`;
    const signed = (id: string) =>
      handSignature(
        { specversion: '1.0', id, source: 'billing', type: 'ledger.entry.posted', time, datacontenttype: 'application/json' },
        canonicalData,
      );
    const [a, b] = [newMessageId(), newMessageId()];
    const forged = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/cloudevents-batch+json' },
      body: `[${event(a, signed(a))},${event(b, signed(a))}]`,
    });
    expect(forged.status).toBe(403);
    expect(seen).toEqual([]);
    const genuine = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/cloudevents-batch+json' },
      body: `[${event(a, signed(a))},${event(b, signed(b))}]`,
    });
    expect(genuine.status).toBe(200);
    expect(await genuine.json()).toEqual({
      results: [
        { id: a, status: 'processed' },
        { id: b, status: 'processed' },
      ],
    });
  });

  it('with require: false takes unsigned events (a rollout) but still refuses a signature that does not verify', async () => {
    const { url, seen } = await ledgerOverHttp(false);
    expect((await fetch(url, { method: 'POST', headers: binaryHeaders(newMessageId(), undefined), body })).status).toBe(204);
    const bad = await fetch(url, { method: 'POST', headers: binaryHeaders(newMessageId(), 'hs256;billing-1;AAAA'), body });
    expect(bad.status).toBe(403);
    expect(seen).toHaveLength(1);
  });

  it('refuses a configuration whose source names a key it does not have, or a key listed twice', () => {
    const make = (sources: Record<string, string[]>, keys = [{ id: 'k1', algorithm: 'hs256' as const, secret: SECRET }]) =>
      createMessaging({ broker: createMemoryBroker(), service: 'ledger', deadLetters: false, signing: { verify: { keys, sources } } });
    expect(() => make({ billing: ['k2'] })).toThrow(SwitchboardError);
    expect(() => make({ billing: ['k2'] })).toThrow(/names key "k2", which is not in verify.keys/);
    expect(() =>
      make({ billing: ['k1'] }, [
        { id: 'k1', algorithm: 'hs256', secret: SECRET },
        { id: 'k1', algorithm: 'hs256', secret: SECRET },
      ]),
    ).toThrow(/listed twice/);
  });
});
