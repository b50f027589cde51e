import type {
  AnyContract,
  BlobStore,
  Broker,
  ChangeDefinition,
  ChangeOperation,
  DeadLetterStore,
  FieldError,
  OutboxClaimOptions,
  OutboxEntry,
  OutboxRelay,
  OutboxRelayOptions,
  OutboxStore,
} from '@switchboard/core';
import { createOutboxRelay, isSwitchboardError, SwitchboardError } from '@switchboard/core';
import { type ClaimCheckOptions, createMessaging, type Messaging } from '@switchboard/messaging';
import { changeDeadLetter, validationDetail } from './dead-letter.js';
import { CHANGE_HEADERS, sqliteTableName } from './sqlite-setup.js';

export interface SqliteChangeRelayOptions extends Omit<OutboxRelayOptions, 'store'> {
  /**
   * The SQLite outbox the change triggers write to (`createSqliteOutbox` on the same file). The
   * relay publishes everything in it, in order: the application's own messages unchanged, and
   * each change row as the event it declares. It must be the only relay of that outbox.
   */
  readonly outbox: OutboxStore;
  /** Where the events go; the change rows are encoded for its CloudEvents binding. */
  readonly broker: Broker;
  /** The contracts whose triggers were installed (`installSqliteChangeTriggers`). */
  readonly contracts: AnyContract | readonly AnyContract[];
  /** Where changes that fail their schema go, with the row key and the reason. `false`: dropped, reported to `onError`. */
  readonly deadLetters: DeadLetterStore | false;
  /** Dead letters' `group`. Default `changes.sqlite`. */
  readonly group?: string;
  /** Claim check: rows larger than `claimCheck.thresholdBytes` are stored in the first blob store and sent by reference. */
  readonly blobs?: BlobStore | readonly BlobStore[];
  readonly claimCheck?: ClaimCheckOptions;
  /**
   * How long the relay sleeps when the outbox is empty. Triggers cannot wake a relay (SQLite
   * tells no other connection about a commit), so the relay polls. Default 100 ms.
   */
  readonly pollIntervalMs?: number;
}

export interface SqliteChangeRelayStats {
  /** Change rows turned into events (a row built again after a failed publish or a crash counts again). */
  readonly changes: number;
  readonly deadLettered: number;
  /** Changes that failed their schema while `deadLetters` is false. */
  readonly dropped: number;
}

export interface SqliteChangeRelay extends OutboxRelay {
  stats(): SqliteChangeRelayStats;
}

/**
 * The relay of a SQLite outbox that change triggers write to: an outbox relay (`createOutboxRelay`,
 * with all its guarantees: confirm before mark, one ordered stream, the same ids after a crash) whose
 * claims turn each change row into the declared event — typed and validated against the contract's
 * `columns`, encoded by the messaging layer (`prepareEmit`, the encoder `emit` uses) for this
 * broker's binding, `source` `/sqlite/<database>/<table>`, `subject` the row key, the row's id as
 * MessageId, ordering key `<table>/<subject>`. A change that fails its schema (or has no key value)
 * is dead-lettered with the row key and the reason, and the stream goes on.
 */
export function createSqliteChangeRelay(options: SqliteChangeRelayOptions): SqliteChangeRelay {
  const store = new ChangeRowStore(options);
  const inner = createOutboxRelay({ ...options, store, pollIntervalMs: options.pollIntervalMs ?? 100 });
  return {
    get owner() {
      return inner.owner;
    },
    get running() {
      return inner.running;
    },
    start: () => inner.start(),
    stop: () => inner.stop(),
    runOnce: () => inner.runOnce(),
    stats: () => store.stats(),
  };
}

/** A change row, read from its headers and body. */
interface ChangeRow {
  readonly contract: AnyContract;
  readonly declaration: ChangeDefinition;
  readonly table: string;
  readonly operation: ChangeOperation;
  readonly event: string;
  readonly source: string;
  readonly id: string;
  readonly data: Record<string, unknown>;
  readonly subject: string | undefined;
  /** Why it cannot be published (a key value missing, an unreadable body); it is dead-lettered. */
  readonly problem?: string;
}

/**
 * The outbox as the relay sees it: claims return the application's messages as they are and each
 * change row replaced by its event. Changes that cannot be published are dead-lettered and marked
 * sent before the claim returns (a crash in between dead-letters them again: `add` is idempotent
 * per id). A failure to build an event (the blob store or the dead-letter store down) returns the
 * entries before it and releases the rest, so the stream stays in order.
 */
class ChangeRowStore implements OutboxStore {
  readonly #inner: OutboxStore;
  readonly #options: SqliteChangeRelayOptions;
  readonly #contracts = new Map<string, AnyContract>();
  readonly #messaging = new Map<string, Messaging>();
  readonly #declarations = new Map<string, { readonly contract: AnyContract; readonly declaration: ChangeDefinition }>();
  readonly #group: string;
  readonly #counters = { changes: 0, deadLettered: 0, dropped: 0 };

  constructor(options: SqliteChangeRelayOptions) {
    this.#inner = options.outbox;
    this.#options = options;
    this.#group = options.group ?? 'changes.sqlite';
    if (options.deadLetters === undefined) {
      throw new SwitchboardError('SB_CONFIG_INVALID', {
        detail: '`deadLetters` is required: a DeadLetterStore, or false to drop invalid changes',
      });
    }
    const list: readonly AnyContract[] = Array.isArray(options.contracts) ? options.contracts : [options.contracts as AnyContract];
    for (const contract of list) {
      if (contract?.kind !== 'contract') throw new SwitchboardError('SB_CONFIG_INVALID', { detail: '`contracts` takes contracts' });
      this.#contracts.set(contract.name, contract);
    }
  }

  stats(): SqliteChangeRelayStats {
    return { ...this.#counters };
  }

  async claim(options: OutboxClaimOptions): Promise<OutboxEntry[]> {
    for (;;) {
      const entries = await this.#inner.claim(options);
      if (entries.length === 0) return entries;
      const out: OutboxEntry[] = [];
      const settled: number[] = [];
      let failure: unknown;
      let failedAt = entries.length;
      for (let i = 0; i < entries.length; i++) {
        const entry = entries[i] as OutboxEntry;
        if (entry.message.headers[CHANGE_HEADERS.operation] === undefined) {
          out.push(entry);
          continue;
        }
        try {
          const message = await this.#build(entry);
          if (message === undefined) settled.push(entry.seq);
          else out.push({ ...entry, message });
        } catch (error) {
          failure = error;
          failedAt = i;
          break;
        }
      }
      if (failedAt < entries.length) {
        await this.#inner.release(
          entries.slice(failedAt).map((e) => e.seq),
          options.owner,
        );
      }
      if (settled.length > 0) await this.#inner.markSent(settled, options.owner);
      if (out.length > 0) return out;
      if (failure !== undefined) throw failure;
      // Every entry claimed was dead-lettered: claim the next ones.
    }
  }

  markSent(seqs: readonly number[], owner: string): Promise<number> {
    return this.#inner.markSent(seqs, owner);
  }

  release(seqs: readonly number[], owner: string): Promise<number> {
    return this.#inner.release(seqs, owner);
  }

  purgeSent(olderThan: number): Promise<number> {
    return this.#inner.purgeSent(olderThan);
  }

  pendingCount(): Promise<number> {
    return this.#inner.pendingCount();
  }

  onEnqueued(listener: () => void): () => void {
    return this.#inner.onEnqueued?.(listener) ?? (() => {});
  }

  close(): Promise<void> {
    return this.#inner.close();
  }

  /** The event of a change row, or undefined when the change was dead-lettered (or dropped). */
  async #build(entry: OutboxEntry): Promise<OutboxEntry['message'] | undefined> {
    const change = this.#read(entry);
    if (change.problem !== undefined) {
      await this.#deadLetter(change, change.problem, []);
      return undefined;
    }
    try {
      const message = await this.#messagingFor(change.source).prepareEmit(change.contract, change.event as never, change.data as never, {
        id: change.id,
        key: orderingKey(change),
        ...(change.subject === undefined ? {} : { subject: change.subject }),
      });
      this.#counters.changes += 1;
      return message;
    } catch (error) {
      if (!isSwitchboardError(error, 'SB_VALIDATION')) throw error;
      await this.#deadLetter(change, `does not match its schema (${validationDetail(error)})`, error.errors ?? []);
      return undefined;
    }
  }

  #read(entry: OutboxEntry): ChangeRow {
    const headers = entry.message.headers;
    const operation = headers[CHANGE_HEADERS.operation] as ChangeOperation;
    const contractName = headers[CHANGE_HEADERS.contract] ?? '';
    const event = headers[CHANGE_HEADERS.event] ?? '';
    const table = headers[CHANGE_HEADERS.table] ?? '';
    const source = headers[CHANGE_HEADERS.source] ?? '';
    const { contract, declaration } = this.#declared(entry.seq, contractName, table, event, operation);
    const base = { contract, declaration, table, operation, event, source, id: entry.message.id };
    let data: Record<string, unknown>;
    try {
      data = decodeRow(entry.message.body);
    } catch (error) {
      return { ...base, data: {}, subject: undefined, problem: `has a body that cannot be read (${(error as Error).message})` };
    }
    const parts: string[] = [];
    let problem: string | undefined;
    for (const key of declaration.key) {
      const value = data[key];
      if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') parts.push(String(value));
      else problem ??= `has no value for key column ${key}`;
    }
    const subject = problem !== undefined ? undefined : parts.length === 1 ? parts[0] : parts.map(encodeURIComponent).join('/');
    return { ...base, data, subject, ...(problem === undefined ? {} : { problem }) };
  }

  /** The contract and declaration a change row names, checked once per kind of row. */
  #declared(
    seq: number,
    contractName: string,
    table: string,
    event: string,
    operation: ChangeOperation,
  ): { readonly contract: AnyContract; readonly declaration: ChangeDefinition } {
    const cacheKey = `${contractName}\u0000${table}\u0000${event}\u0000${operation}`;
    const known = this.#declarations.get(cacheKey);
    if (known !== undefined) return known;
    const contract = this.#contracts.get(contractName);
    if (contract === undefined) {
      throw new SwitchboardError('SB_CONFIG_INVALID', {
        detail: `outbox entry ${seq} is a change of contract ${contractName}, which this relay was not given: add it to \`contracts\``,
      });
    }
    const declaration = contract.changes.find((d) => sqliteTableName(d)?.toLowerCase() === table.toLowerCase());
    if (declaration === undefined || !Object.hasOwn(contract.events, event) || !['insert', 'update', 'delete'].includes(operation)) {
      throw new SwitchboardError('SB_CONFIG_INVALID', {
        detail:
          `outbox entry ${seq} is a ${operation} of ${table} as event ${event}, which contract ${contractName} does not declare: ` +
          'run installSqliteChangeTriggers with the contract the relay has (or give the relay the contract the triggers were installed with)',
      });
    }
    const found = { contract, declaration };
    this.#declarations.set(cacheKey, found);
    return found;
  }

  #messagingFor(source: string): Messaging {
    let messaging = this.#messaging.get(source);
    if (messaging === undefined) {
      const options = this.#options;
      // One messaging per source: its `service` is the events' `source`. It never consumes.
      messaging = createMessaging({
        broker: options.broker,
        service: source,
        deadLetters: false,
        declareReceiverGroups: false,
        ...(options.blobs === undefined ? {} : { blobs: options.blobs }),
        ...(options.claimCheck === undefined ? {} : { claimCheck: options.claimCheck }),
      });
      this.#messaging.set(source, messaging);
    }
    return messaging;
  }

  async #deadLetter(change: ChangeRow, why: string, errors: readonly FieldError[]): Promise<void> {
    const detail = `${change.operation} of ${change.table} row ${change.subject ?? '(no key)'} ${why}`;
    const deadLetters = this.#options.deadLetters;
    if (deadLetters === false) {
      this.#counters.dropped += 1;
      this.#options.onError?.(new SwitchboardError('SB_MESSAGE_INVALID', { detail: `${detail}; dropped (no dead-letter store)`, errors }));
      return;
    }
    const refused = { ...change, key: orderingKey(change) };
    await deadLetters.add(changeDeadLetter(refused, { binding: this.#options.broker.binding, group: this.#group, detail, errors }));
    this.#counters.deadLettered += 1;
  }
}

function orderingKey(change: ChangeRow): string {
  return `${change.table}/${change.subject ?? ''}`;
}

const BLOB_TEXT = new TextDecoder('utf-8', { fatal: true });

/**
 * A change row's body as JSON values. Each column arrives as a string tagged with its storage
 * class, or null:
 *
 * | stored  | written by the trigger          | JSON value                                              |
 * | ------- | ------------------------------- | ------------------------------------------------------- |
 * | INTEGER | `i` + its decimal text          | number; a string past ±(2^53 − 1) (no precision lost)   |
 * | REAL    | `r` + 17 significant digits     | number (exactly the stored double); `Infinity`, `-Infinity` as strings |
 * | TEXT    | `t` + the text                  | string                                                  |
 * | BLOB    | `x` + hex                       | base64 string                                           |
 * | NULL    | null                            | null                                                    |
 */
export function decodeRow(body: Uint8Array): Record<string, unknown> {
  const parsed = JSON.parse(BLOB_TEXT.decode(body)) as unknown;
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(parsed as Record<string, unknown>)) out[name] = decodeValue(value, name);
  return out;
}

function decodeValue(value: unknown, name: string): unknown {
  if (value === null) return null;
  if (typeof value !== 'string' || value === '') throw new Error(`column ${name} is not a tagged value`);
  const text = value.slice(1);
  switch (value.charCodeAt(0)) {
    case 0x69: {
      // i
      const n = Number(text);
      return Number.isSafeInteger(n) ? n : text;
    }
    case 0x72: // r
      if (text === 'Inf') return 'Infinity';
      if (text === '-Inf') return '-Infinity';
      return Number(text);
    case 0x74: // t
      return text;
    case 0x78: // x
      return Buffer.from(text, 'hex').toString('base64');
    default:
      throw new Error(`column ${name} has an unknown tag`);
  }
}
