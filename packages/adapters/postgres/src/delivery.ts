import { plainHeaders, TrackedDelivery } from '@switchboard/core/kit';

/** A row as a claim returns it. */
export interface ClaimedRow {
  readonly seq: string;
  readonly attempts: number;
  readonly id: string | null;
  /** The `headers` column, parsed: an object of strings unless a foreign producer wrote something else. */
  readonly headers: unknown;
  readonly body: Buffer;
  readonly key: string | null;
}

/** Where a delivery's settles go: the subscription's next settle statement. */
export interface RowSettler {
  /** `delayMs` undefined for an ack. */
  settle(seq: string, attempt: number, delayMs: number | undefined): Promise<void>;
  /** A lease ran out: the row is ready for anyone again, look for it from the head. */
  rescan(): void;
}

export class PostgresDelivery extends TrackedDelivery {
  readonly seq: string;
  readonly #settler: RowSettler;

  constructor(topic: string, row: ClaimedRow, settler: RowSettler) {
    super({
      id: row.id || row.seq,
      topic,
      headers: plainHeaders(row.headers),
      body: new Uint8Array(row.body.buffer, row.body.byteOffset, row.body.byteLength),
      key: row.key ?? undefined,
      attempt: row.attempts,
    });
    this.seq = row.seq;
    this.#settler = settler;
  }

  protected settleAck(): Promise<void> {
    return this.#settler.settle(this.seq, this.attempt, undefined);
  }

  protected settleNack(delayMs: number): Promise<void> {
    return this.#settler.settle(this.seq, this.attempt, delayMs);
  }

  /** The lease in the database ran out with the deadline: the row is visible again, to every consumer. */
  protected override onExpired(): void {
    this.#settler.rescan();
  }
}
