import { createHash } from 'node:crypto';
import type { Handlers } from '@switchboard/core';
import { implement } from '@switchboard/core';
import type { Client, JobsClient } from '@switchboard/http';
import { type FetchReceiptOptions, fetchReceipt, type Messaging, type ReceiptDocument } from '@switchboard/messaging';
import { type Pattern, type PatternReport, serviceA, serviceB, type serviceC } from './contracts.js';
import { generatePicture } from './picture.js';

/** What ServiceA needs to reach B and C: their clients, its messaging, and where to ask for receipts. */
export interface ServiceADeps {
  readonly b: Client<typeof serviceB>;
  readonly bJobs: JobsClient<typeof serviceB>;
  readonly c: Client<typeof serviceC>;
  readonly messaging: Messaging;
  readonly serviceBUrl: string;
  readonly serviceCUrl: string;
  /** Sends the receipt requests (default: the shared transport). */
  readonly dispatcher?: FetchReceiptOptions['dispatcher'];
}

type Report = Omit<PatternReport, 'pattern' | 'durationMs'>;

function groupsOf(document: ReceiptDocument | undefined): ReceiptDocument['groups'] {
  return document?.groups ?? [];
}

/** A's own business logic, before it involves B. */
function normalise(name: string): string {
  return name.trim().replace(/\s+/g, ' ');
}

/**
 * ServiceA's handlers: `process(name, pattern)` runs A's own logic, then reaches B the way it is
 * asked to, and reports what happened, how long it took and what A had to know about B.
 */
export function serviceAHandlers(deps: ServiceADeps): Handlers<typeof serviceA> {
  const { b, bJobs, c, messaging, serviceBUrl, serviceCUrl } = deps;
  // A's messages carry its service name as their CloudEvents source; with the MessageId it names the
  // event, so A asks for the receipt of its own message (another sender may use the same id).
  const receiptWait = {
    source: messaging.service,
    wait: { timeoutMs: 15_000 },
    ...(deps.dispatcher === undefined ? {} : { dispatcher: deps.dispatcher }),
  };
  /** The trace of A's own request: every hop A makes for it continues it, so the dashboard joins them into one flow. */
  type Trace = { readonly traceparent?: string };
  const runners: Record<Pattern, (name: string, trace: Trace) => Promise<Report>> = {
    /** Pattern 1: call B and wait for its answer. */
    'sync-http': async (name, trace) => {
      const { saved, id } = await b.call('save', { name }, trace);
      return {
        ok: saved,
        summary: `B answered saved=${saved} (id ${id})`,
        coupling: "B's URL and contract; B must be up right now",
        details: { saved, id },
      };
    },

    /**
     * Pattern 2: B answers 202 Accepted at once with a status URL; the work runs as a durable job.
     * A follows the status with long-polls (the server holds each request until something changes),
     * so a 1.5 s job costs a handful of status requests instead of one per poll interval.
     */
    'async-http': async (name, trace) => {
      const job = await bJobs.submit('analyze', { name, workMs: 1500 }, trace);
      let statusRequests = 0;
      let lastProgress = 0;
      const result = await bJobs.wait(job, {
        timeoutMs: 30_000,
        onProgress: (progress) => {
          lastProgress = (progress as { percent?: number }).percent ?? lastProgress;
        },
        onRequest: (request) => {
          if (request.kind === 'status' || request.kind === 'events') statusRequests++;
        },
      });
      return {
        ok: result.name === name,
        summary: `202 Accepted, status URL ${job.statusUrl}; done after ${statusRequests} status request(s): ${result.letters} letters, ${result.vowels} vowels`,
        coupling: "B's URL and contract; B must be up to accept the job, not while A waits",
        details: { jobId: job.jobId, statusUrl: job.statusUrl, statusRequests, lastProgress, result },
      };
    },

    /**
     * Pattern 3: the same `save` operation, sent through the broker instead of over HTTP. Publishing
     * returns a MessageId once the broker confirmed it; B records what it did with it, and A asks.
     */
    message: async (name, trace) => {
      const { messageId } = await messaging.invoke(serviceB, 'save', { name }, trace);
      const receipt = await fetchReceipt(serviceBUrl, messageId, receiptWait);
      const state = receipt?.groups.find((group) => group.group === 'service-b');
      return {
        ok: state?.state === 'processed',
        summary: `MessageId ${messageId}; B's receipt: ${state ? `${state.state} after ${state.attempts} attempt(s), result ${state.result ?? '-'}` : 'none yet'}`,
        coupling: "the broker and B's contract; B may be down when A sends (B's URL only to ask for the receipt)",
        details: { messageId, receipt: state ?? null },
      };
    },

    /**
     * Pattern 4: A announces that a name was processed. No payload, no recipients: B and C each
     * react in their own way. A asks both for their receipts only to show that they did.
     */
    event: async (_name, trace) => {
      const { messageId } = await messaging.emit(serviceA, 'name.processed', undefined, trace);
      const [fromB, fromC] = await Promise.all([
        fetchReceipt(serviceBUrl, messageId, receiptWait),
        fetchReceipt(serviceCUrl, messageId, receiptWait),
      ]);
      const states = [...groupsOf(fromB), ...groupsOf(fromC)];
      const reacted = states.filter((group) => group.state === 'processed').map((group) => group.group);
      return {
        ok: reacted.includes('service-b') && reacted.includes('service-c'),
        summary: `MessageId ${messageId}; reacted: ${reacted.join(', ') || 'nobody yet'}`,
        coupling: "the broker and the event's name; nothing about who reacts",
        details: { messageId, reacted },
      };
    },

    /**
     * Pattern 4b: a picture by claim check. The bytes go once to the blob store; the event carries
     * `dataref` + hash + size. B reads the bytes through its blob store, verified against the hash.
     */
    'claim-check': async (name, trace) => {
      const width = 1024;
      const height = 1024;
      const picture = generatePicture(width, height, name.length);
      const sha256 = createHash('sha256').update(picture).digest('hex');
      const { messageId } = await messaging.emit(
        serviceA,
        'picture.uploaded',
        { name, width, height },
        { attachment: picture, attachmentType: 'image/png', ...trace },
      );
      const receipt = await fetchReceipt(serviceBUrl, messageId, receiptWait);
      const state = receipt?.groups.find((group) => group.group === 'service-b');
      const seen = state?.result ? (JSON.parse(state.result) as { sha256?: string; bytes?: number; png?: boolean }) : undefined;
      return {
        ok: state?.state === 'processed' && seen?.sha256 === sha256 && seen.png === true,
        summary: `sent ${picture.length} bytes by reference (MessageId ${messageId}); B read ${seen?.bytes ?? '?'} bytes, sha256 ${seen?.sha256 === sha256 ? 'matches' : 'differs'}`,
        coupling: "the broker, the event's name and a blob store both can read",
        details: { messageId, bytes: picture.length, sha256, seenByB: seen ?? null },
      };
    },

    /**
     * Pattern 5: an event nobody emits. A saves the name with B (a plain call); B writes a row of its
     * names table and nothing else. The committed change becomes `name.saved` (B's contract declares
     * it with `changes(...)`), and C reacts. A asks C what it saw, only to show that it did.
     */
    'change-event': async (name, trace) => {
      const { id, saves } = await b.call('save', { name }, trace);
      const seen = await c.call('seen', { id, saves, waitMs: 15_000 }, trace);
      return {
        ok: seen.seen && seen.saves !== undefined && seen.saves >= saves,
        summary: seen.seen
          ? `B saved row ${id} (save #${saves}); the committed change became name.saved ${seen.messageId} from ${seen.source}; C reacted`
          : `B saved row ${id} (save #${saves}); C has seen no name.saved for it`,
        coupling: "B's URL and contract to save; nothing about C, and B has no code that emits: the row change is the event",
        details: { id, saves, messageId: seen.messageId ?? null, source: seen.source ?? null, seenSaves: seen.saves ?? null },
      };
    },
  };

  return implement(serviceA, {
    process: async ({ name, pattern }, ctx) => {
      const started = performance.now();
      const report = await runners[pattern](normalise(name), ctx.traceparent === undefined ? {} : { traceparent: ctx.traceparent });
      return { pattern, durationMs: Math.round((performance.now() - started) * 100) / 100, ...report };
    },
  });
}
