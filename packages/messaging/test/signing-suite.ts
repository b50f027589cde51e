import { generateKeyPairSync } from 'node:crypto';
import type { Broker, CloudEvent, DeadLetterStore, SigningKey, SigningOptions, VerificationKey } from '@switchboard/core';
import { createSigner, defineContract, encodeCloudEvent, message, newMessageId, SIGNATURE_ATTRIBUTE, signEvent } from '@switchboard/core';
import { createMemoryDeadLetterStore, createMemoryReceiptStore } from '@switchboard/memory';
import { createMessaging, type Messaging, messagesTopic } from '@switchboard/messaging';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { until } from './harness.js';

/** One engine's broker for one test, and how to delete what it made on the server. */
export interface SigningEngine {
  readonly broker: Broker;
  cleanup(): Promise<void>;
}

/** The receiving service's contract: one message, addressed to it. */
export const ledger = defineContract({
  name: 'ledger',
  messages: { 'entry.posted': message({ schema: z.object({ amount: z.number(), memo: z.string() }) }) },
});

const hs = (id: string, fill: string): SigningKey & VerificationKey => ({ id, algorithm: 'hs256', secret: fill.repeat(32) });
const K0 = hs('billing-2025', '0');
const K1 = hs('billing-2026a', '1');
const K2 = hs('billing-2026b', '2');
const ATTACKER = hs('billing-2026a', 'x');
const shop = generateKeyPairSync('ed25519');

/** What the receiver trusts: billing with its two current secrets, shop with its Ed25519 public key. */
const receiverSigning: SigningOptions = {
  verify: {
    keys: [K1, K2, { id: 'shop-ed', algorithm: 'ed25519', publicKey: shop.publicKey }],
    sources: { billing: [K1.id, K2.id], shop: ['shop-ed'] },
  },
};

async function count(store: DeadLetterStore): Promise<number> {
  return (await store.list({ limit: 1000 })).items.length;
}

interface Seen {
  readonly data: unknown;
  readonly source: string;
  readonly messageId: string;
  readonly signature: unknown;
}

/**
 * Signed messages on one engine, through `createMessaging` on both sides: the same cases on every
 * engine (memory, SQLite, Redis Streams, PostgreSQL, RabbitMQ, NATS JetStream, SNS/SQS), so the
 * signature is shown to survive each binding in the mode the engine uses, and verification to sit
 * before the inbox.
 */
export function describeSignedMessaging(name: string, factory: () => Promise<SigningEngine>): void {
  async function withEngine(
    body: (context: {
      broker: Broker;
      make: (service: string, signing: SigningOptions) => Messaging;
      deadLetters: ReturnType<typeof createMemoryDeadLetterStore>;
      seen: Seen[];
      receiver: () => Promise<Messaging>;
    }) => Promise<void>,
  ): Promise<void> {
    const engine = await factory();
    const deadLetters = createMemoryDeadLetterStore();
    const receipts = createMemoryReceiptStore();
    const instances: Messaging[] = [];
    const make = (service: string, signing: SigningOptions): Messaging => {
      const instance = createMessaging({
        broker: engine.broker,
        service,
        receipts,
        deadLetters,
        retry: { maxAttempts: 2, backoff: { baseMs: 5, maxMs: 20 } },
        handlerTimeoutMs: 5000,
        signing,
      });
      instances.push(instance);
      return instance;
    };
    const seen: Seen[] = [];
    const receiver = async (): Promise<Messaging> => {
      const instance = make('ledger', receiverSigning);
      instance.handle(ledger, 'entry.posted', (data, context) => {
        seen.push({
          data,
          source: context.source,
          messageId: context.messageId,
          signature: context.event.extensions?.[SIGNATURE_ATTRIBUTE],
        });
      });
      await instance.start();
      return instance;
    };
    try {
      await body({ broker: engine.broker, make, deadLetters, seen, receiver });
    } finally {
      await Promise.all(instances.map((instance) => instance.close()));
      await engine.cleanup();
    }
  }

  /** Publishes `event` raw (as an attacker on the broker would), encoded as the engine's binding says. */
  async function publishRaw(broker: Broker, event: CloudEvent): Promise<void> {
    const encoded = encodeCloudEvent(event, broker.binding);
    await broker.publish({ id: event.id, topic: messagesTopic(ledger), headers: encoded.headers, body: encoded.body });
  }

  function entry(id: string, source: string, memo: string): CloudEvent {
    return {
      specversion: '1.0',
      id,
      source,
      type: 'ledger.entry.posted',
      time: new Date().toISOString(),
      datacontenttype: 'application/json',
      data: { amount: 5, memo },
    };
  }

  const timeout = 20_000;

  describe(`signed messages on ${name}`, () => {
    it('a signed round trip (HMAC and Ed25519), then a key rotation: the old and the new key verify, a retired one does not', async () => {
      await withEngine(async ({ broker, make, deadLetters, seen, receiver }) => {
        await receiver();
        const billing = make('billing', { sign: K1 });
        const first = await billing.send(ledger, 'entry.posted', { amount: 1, memo: 'k1 ünïcode' });
        const shopService = make('shop', { sign: { id: 'shop-ed', algorithm: 'ed25519', privateKey: shop.privateKey } });
        const fromShop = await shopService.send(ledger, 'entry.posted', { amount: 2, memo: 'ed25519' }, { subject: 'order/7 % é' });
        // Rotation: billing now signs with its new key; the receiver accepts both while they overlap.
        const rotated = make('billing', { sign: K2 });
        const second = await rotated.send(ledger, 'entry.posted', { amount: 3, memo: 'k2' });
        // A key the receiver no longer lists (retired before this run): a dead letter.
        await publishRaw(broker, signEvent(entry(newMessageId(), 'billing', 'retired key'), createSigner(K0)));
        await until(async () => seen.length === 3 && (await count(deadLetters)) === 1, 'three handled, one dead letter', timeout);
        expect(new Map(seen.map((s) => [s.messageId, s]))).toEqual(
          new Map([
            [
              first.messageId,
              {
                data: { amount: 1, memo: 'k1 ünïcode' },
                source: 'billing',
                messageId: first.messageId,
                signature: expect.stringMatching(/^hs256;billing-2026a;[A-Za-z0-9_-]{43}$/),
              },
            ],
            [
              fromShop.messageId,
              {
                data: { amount: 2, memo: 'ed25519' },
                source: 'shop',
                messageId: fromShop.messageId,
                signature: expect.stringMatching(/^ed25519;shop-ed;[A-Za-z0-9_-]{86}$/),
              },
            ],
            [
              second.messageId,
              {
                data: { amount: 3, memo: 'k2' },
                source: 'billing',
                messageId: second.messageId,
                signature: expect.stringMatching(/^hs256;billing-2026b;/),
              },
            ],
          ]),
        );
        const page = await deadLetters.list({ reason: 'signature' });
        expect(page.items.map((item) => ({ reason: item.reason, source: item.source }))).toEqual([
          { reason: 'signature', source: 'billing' },
        ]);
        const letter = await deadLetters.get(page.items[0]!.id);
        expect(letter?.attempts.at(-1)?.error).toMatchObject({
          code: 'SB_SIGNATURE_INVALID',
          status: 403,
          detail: expect.stringContaining('key'),
        });
      });
    }, 60_000);

    it('unsigned and forged events are dead letters with reason signature; a forgery squatting a genuine MessageId is refused before the inbox', async () => {
      await withEngine(async ({ broker, make, deadLetters, seen, receiver }) => {
        const ledgerService = await receiver();
        const squatted = newMessageId();
        // The attacker knows (or guesses) the id billing will use next, and publishes first under
        // billing's source, unsigned. Then more forgeries: signed with its own secret under billing's
        // key id, a genuine billing signature copied onto changed data, and an untrusted source signing
        // with a trusted key.
        await publishRaw(broker, entry(squatted, 'billing', 'unsigned'));
        await publishRaw(broker, signEvent(entry(newMessageId(), 'billing', 'forged key'), createSigner(ATTACKER)));
        const genuine = signEvent(entry(newMessageId(), 'billing', 'genuine'), createSigner(K1));
        await publishRaw(broker, { ...entry(genuine.id, 'billing', 'copied signature'), extensions: genuine.extensions! });
        await publishRaw(broker, signEvent(entry(newMessageId(), 'intruder', 'untrusted source'), createSigner(K1)));
        await until(async () => (await count(deadLetters)) === 4, 'four dead letters', timeout);
        // Then the genuine message with the squatted id: the forgery left no trace in the inbox.
        const billing = make('billing', { sign: K1 });
        await billing.send(ledger, 'entry.posted', { amount: 9, memo: 'the real one' }, { id: squatted });
        if (broker.capabilities.publishDeduplication) {
          // An engine that deduplicates publishes by id (JetStream's Nats-Msg-Id) drops the genuine
          // publish itself, before any consumer: no signature can help there (see security.md). The
          // next message, on the same ordered topic, shows it is not merely late.
          const next = await billing.send(ledger, 'entry.posted', { amount: 10, memo: 'the next one' });
          await until(() => seen.length === 1, 'the next message', timeout);
          expect(seen[0]).toMatchObject({ data: { amount: 10, memo: 'the next one' }, source: 'billing', messageId: next.messageId });
        } else {
          await until(() => seen.length === 1, 'the genuine message', timeout);
          expect(seen[0]).toMatchObject({ data: { amount: 9, memo: 'the real one' }, source: 'billing', messageId: squatted });
          const receipt = await ledgerService.receipts.wait(squatted, { source: 'billing', timeoutMs: timeout });
          expect(receipt?.groups).toEqual([expect.objectContaining({ group: 'ledger', state: 'processed', attempts: 1 })]);
        }
        const page = await deadLetters.list({ reason: 'signature' });
        expect(page.items).toHaveLength(4);
        expect(new Set(page.items.map((item) => item.source))).toEqual(new Set(['billing', 'intruder']));
        // Filed under a digest of the bytes, never the id the forger chose.
        for (const item of page.items) expect(item.messageId).toMatch(/^sha256:[0-9a-f]{64}$/);
        const details = await Promise.all(page.items.map(async (item) => (await deadLetters.get(item.id))?.attempts.at(-1)?.error.detail));
        expect(new Set(details)).toEqual(
          new Set([
            'the event carries no signature (sbsignature)',
            'the signature does not match the event',
            'no key may sign for the event source',
          ]),
        );
      });
    }, 60_000);
  });
}
