import { AsyncLocalStorage } from 'node:async_hooks';
import { randomHex } from './ids.js';

/**
 * W3C Trace Context, Level 1 and Level 2 (https://www.w3.org/TR/trace-context-2/), strict where the
 * specification leaves a choice:
 *
 * - `traceparent`: optional whitespace (space, tab) around the value is ignored; version `ff`,
 *   upper-case hex, all-zero ids, a version `00` value with anything after the flags, or a higher
 *   version whose flags are not followed by the end or a dash are invalid, and an invalid value
 *   restarts the trace (and drops the `tracestate`). A higher version is downgraded to `00`.
 * - trace-flags: only `sampled` (`01`) and Level 2 `random` (`02`) are kept; reserved bits are
 *   zeroed on the way out. A restarted trace has random ids, so it is sent with `random` set (and
 *   `sampled`); a continued trace keeps the caller's `random` bit as it came.
 * - `tracestate`: members are split on commas with their optional whitespace, empty members are
 *   skipped, a repeated key keeps its first (left-most, most recent) value. If any member breaks the
 *   key or value grammar, or there are more than 32 members, the whole header is discarded (an
 *   invalid member is never forwarded). A header over 512 characters loses whole members: those
 *   over 128 characters first, then from the right. An empty result is not sent.
 */
export interface TraceParent {
  /** The version received (two lower-case hex digits, never `ff`); what is sent is always `00`. */
  readonly version: string;
  readonly traceId: string;
  readonly parentId: string;
  /** The known flags only (`sampled`, `random`), as two hex digits: reserved bits are zero. */
  readonly flags: string;
}

/** The `sampled` trace flag. */
export const TRACE_FLAG_SAMPLED = 0x01;
/** The Level 2 `random` trace flag: the trace id's right-most 7 bytes are random. */
export const TRACE_FLAG_RANDOM = 0x02;
const KNOWN_FLAGS = TRACE_FLAG_SAMPLED | TRACE_FLAG_RANDOM;
/** Flags of a trace started here: our ids are random, and the trace is sampled. */
const NEW_TRACE_FLAGS = '03';

/** Most members a `tracestate` may have. */
export const TRACESTATE_MAX_MEMBERS = 32;
/** Length a `tracestate` is truncated to (whole members), the size the specification asks to propagate. */
export const TRACESTATE_MAX_LENGTH = 512;
const TRACESTATE_LONG_MEMBER = 128;

const HEX_FIELDS = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}/;
const ALL_ZERO = /^0+$/;
const OWS_EDGES = /^[ \t]+|[ \t]+$/g;

/** One header value, or several header lines of the same field (a repeated `traceparent` is invalid). */
export type TraceHeaderValue = string | readonly string[] | undefined | null;

function single(value: TraceHeaderValue): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  return value.length === 1 ? value[0] : undefined;
}

/** The parsed `traceparent`, or `undefined` when it is absent or invalid (the trace restarts). */
export function parseTraceparent(value: TraceHeaderValue): TraceParent | undefined {
  const raw = single(value);
  if (raw === undefined || raw.length < 55) return undefined;
  // Optional whitespace around the value: only then is a trimmed copy made.
  const text = isOws(raw.charCodeAt(0)) || isOws(raw.charCodeAt(raw.length - 1)) ? raw.replace(OWS_EDGES, '') : raw;
  if (!HEX_FIELDS.test(text)) return undefined;
  const version = text.slice(0, 2);
  if (version === 'ff') return undefined;
  if (version === '00' ? text.length !== 55 : text.length > 55 && text.charCodeAt(55) !== 0x2d) return undefined;
  const traceId = text.slice(3, 35);
  const parentId = text.slice(36, 52);
  if (traceId === ZERO_TRACE_ID || parentId === ZERO_SPAN_ID) return undefined;
  // Only the last hex digit holds the known flags (0x01, 0x02).
  const last = text.charCodeAt(54);
  const known = (last <= 0x39 ? last - 0x30 : last - 0x57) & KNOWN_FLAGS;
  return { version, traceId, parentId, flags: FLAGS[known] as string };
}

const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_SPAN_ID = '0'.repeat(16);
const FLAGS = ['00', '01', '02', '03'] as const;

function isOws(code: number): boolean {
  return code === 0x20 || code === 0x09;
}

/** A `traceparent` value (version `00`, reserved flags zero). */
export function formatTraceparent(trace: Pick<TraceParent, 'traceId' | 'parentId' | 'flags'>): string {
  const known = Number.parseInt(trace.flags, 16) & KNOWN_FLAGS;
  return `00-${trace.traceId}-${trace.parentId}-0${Number.isNaN(known) ? 0 : known}`;
}

// key = ( lcalpha / DIGIT ) 0*255 ( keychar ); keychar = lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@"
const TRACESTATE_KEY = /^[a-z0-9][a-z0-9_\-*/@]{0,255}$/;
// value = 0*255(chr) nblk-chr; chr = %x20 / nblk-chr; nblk-chr = %x21-2B / %x2D-3C / %x3E-7E
const TRACESTATE_VALUE = /^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;

/** One `tracestate` list member. */
export interface TracestateMember {
  readonly key: string;
  readonly value: string;
}

/**
 * The members of a `tracestate` (several header lines are one list, in order), or `undefined` when
 * it must be discarded: a member breaks the grammar, or there are more than 32. `[]` when empty.
 */
export function parseTracestate(value: TraceHeaderValue): TracestateMember[] | undefined {
  if (value === undefined || value === null) return [];
  const text = typeof value === 'string' ? value : value.join(',');
  const members: TracestateMember[] = [];
  const seen = new Set<string>();
  for (const piece of text.split(',')) {
    const member = piece.replace(OWS_EDGES, '');
    if (member.length === 0) continue;
    const eq = member.indexOf('=');
    if (eq <= 0) return undefined;
    const key = member.slice(0, eq);
    const val = member.slice(eq + 1);
    if (!TRACESTATE_KEY.test(key) || !TRACESTATE_VALUE.test(val)) return undefined;
    if (seen.has(key)) continue;
    seen.add(key);
    members.push({ key, value: val });
    if (members.length > TRACESTATE_MAX_MEMBERS) return undefined;
  }
  return members;
}

/** A `tracestate` value from its members (no whitespace), or `undefined` for none. */
export function formatTracestate(members: readonly TracestateMember[]): string | undefined {
  if (members.length === 0) return undefined;
  return members.map((member) => `${member.key}=${member.value}`).join(',');
}

/**
 * The `tracestate` to pass on: validated, without whitespace or empty members, truncated to 512
 * characters by whole members; `undefined` when there is nothing valid to send.
 */
export function normalizeTracestate(value: TraceHeaderValue): string | undefined {
  const members = parseTracestate(value);
  if (members === undefined || members.length === 0) return undefined;
  const length = (list: readonly TracestateMember[]): number =>
    list.reduce((sum, member) => sum + member.key.length + 1 + member.value.length, list.length - 1);
  let kept = members;
  while (kept.length > 0 && length(kept) > TRACESTATE_MAX_LENGTH) {
    let drop = -1;
    for (let i = kept.length - 1; i >= 0; i--) {
      const member = kept[i] as TracestateMember;
      if (member.key.length + 1 + member.value.length > TRACESTATE_LONG_MEMBER) {
        drop = i;
        break;
      }
    }
    kept = kept.filter((_, i) => i !== (drop === -1 ? kept.length - 1 : drop));
  }
  return formatTracestate(kept);
}

/** A random, valid W3C trace id (32 hex digits, never all zero). */
export function newTraceId(): string {
  for (;;) {
    const id = randomHex(16);
    if (!ALL_ZERO.test(id)) return id;
  }
}

/** A random, valid W3C span (parent) id (16 hex digits, never all zero). */
export function newSpanId(): string {
  for (;;) {
    const id = randomHex(8);
    if (!ALL_ZERO.test(id)) return id;
  }
}

/**
 * The `traceparent` to send downstream: same trace, new span id, known flags only. Starts a new
 * trace (random ids, `sampled` and `random` set) when there is no valid parent. Ids come from a
 * random pool: no system call per call.
 */
export function childTraceparent(parent?: TraceHeaderValue): string {
  const parsed = parseTraceparent(parent);
  if (parsed) return `00-${parsed.traceId}-${newSpanId()}-${parsed.flags}`;
  return `00-${newTraceId()}-${newSpanId()}-${NEW_TRACE_FLAGS}`;
}

/** The trace context of one unit of work: its own span, and the `tracestate` it passes on. */
export interface TraceContext {
  readonly traceparent: string;
  readonly tracestate: string | undefined;
}

/**
 * Received trace headers → the context of the work they start: a child span of a valid parent
 * with its `tracestate` normalized, or a new trace without any `tracestate` (a `tracestate` that
 * comes without a valid `traceparent` is discarded).
 */
export function continueTrace(traceparent: TraceHeaderValue, tracestate: TraceHeaderValue): TraceContext {
  const parsed = parseTraceparent(traceparent);
  if (parsed === undefined) return { traceparent: `00-${newTraceId()}-${newSpanId()}-${NEW_TRACE_FLAGS}`, tracestate: undefined };
  return { traceparent: `00-${parsed.traceId}-${newSpanId()}-${parsed.flags}`, tracestate: normalizeTracestate(tracestate) };
}

/**
 * Trace headers for a request a handler makes with a client of its own (`fetch`, a vendor SDK): a
 * new span of the context's trace (default: the ambient one, see {@link currentTrace}), and its
 * `tracestate` when the trace continues. Without a valid `traceparent` a new trace starts, and no
 * `tracestate` is sent.
 */
export function traceHeaders(context: TraceCarrier | undefined = currentTrace()): { traceparent: string; tracestate?: string } {
  const parsed = parseTraceparent(context?.traceparent);
  if (parsed === undefined) return { traceparent: `00-${newTraceId()}-${newSpanId()}-${NEW_TRACE_FLAGS}` };
  const traceparent = `00-${parsed.traceId}-${newSpanId()}-${parsed.flags}`;
  const tracestate = normalizeTracestate(context?.tracestate);
  return tracestate === undefined ? { traceparent } : { traceparent, tracestate };
}

/** What carries a trace: a handler's context, or any object with its `traceparent` and `tracestate`. */
export interface TraceCarrier {
  readonly traceparent?: string | undefined;
  readonly tracestate?: string | undefined;
}

const ambient = new AsyncLocalStorage<TraceCarrier>();
let ambientOn = true;

/**
 * Runs `fn(...args)` with `carrier` as the ambient trace: outgoing calls, submits, sends, emits
 * and invokes made inside it (and in everything it awaits) continue that trace when they are given
 * no explicit context. The HTTP server, the job runner and the consumers run every handler so.
 * With the ambient trace turned off ({@link setAmbientTrace}) it only calls `fn`.
 */
export function runWithTrace<A extends unknown[], R>(carrier: TraceCarrier, fn: (...args: A) => R, ...args: A): R {
  return ambientOn ? ambient.run(carrier, fn, ...args) : fn(...args);
}

/**
 * Turns the ambient trace on (the default) or off for this process. On Node 20 an
 * `AsyncLocalStorage` in use turns on the promise hooks for every promise of the process, about
 * 10 µs per sync HTTP request in the benchmark; a service that passes trace context explicitly
 * (`{ traceparent: ctx.traceparent }` on each outgoing call) or does not trace can turn it off.
 * Off, handlers' outgoing calls made without an explicit context start new traces.
 */
export function setAmbientTrace(on: boolean): void {
  ambientOn = on;
  // Disabled, the storage drops its hooks (Node keeps them only while some storage is enabled).
  if (!on) ambient.disable();
}

/** The ambient trace: the context of the handler this code runs in, if any. */
export function currentTrace(): TraceCarrier | undefined {
  return ambient.getStore();
}
