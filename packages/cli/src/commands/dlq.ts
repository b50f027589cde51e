import type { DeadLetter, DeadLetterFilter, DeadLetterStatus, DeadLetterSummary } from '@switchboard/core';
import { SwitchboardError } from '@switchboard/core';
import type { Command } from 'commander';
import type { CommandContext } from '../command.js';
import { CliError } from '../io.js';
import { openDeadLetterStore, openReceiptStore } from '../stores.js';

interface FilterFlags {
  readonly store: string;
  readonly reason?: string;
  readonly type?: string;
  readonly group?: string;
  readonly topic?: string;
  readonly source?: string;
  readonly messageId?: string;
  readonly limit?: string;
  readonly json?: boolean;
}

const STATUSES: readonly DeadLetterStatus[] = ['pending', 'replaying', 'replayed'];

function positiveInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw CliError.usage(`${name} must be a positive integer, got ${value}`);
  return n;
}

function filterOf(flags: FilterFlags): DeadLetterFilter {
  return {
    ...(flags.reason === undefined ? {} : { reason: flags.reason }),
    ...(flags.type === undefined ? {} : { type: flags.type }),
    ...(flags.group === undefined ? {} : { group: flags.group }),
    ...(flags.topic === undefined ? {} : { topic: flags.topic }),
    ...(flags.source === undefined ? {} : { source: flags.source }),
    ...(flags.messageId === undefined ? {} : { messageId: flags.messageId }),
  };
}

function withFilters(command: Command): Command {
  return command
    .requiredOption(
      '--store <url>',
      'the dead-letter store: sqlite:<file>, postgres://…, redis://… (env SWITCHBOARD_DEAD_LETTERS)',
      process.env.SWITCHBOARD_DEAD_LETTERS,
    )
    .option('--reason <reason>', 'only this reason (max-attempts, permanent, invalid, unknown-type, claim-check, …)')
    .option('--type <type>', 'only this CloudEvents type')
    .option('--group <group>', 'only this consumer group')
    .option('--topic <topic>', 'only this topic')
    .option('--source <source>', 'only this CloudEvents source')
    .option('--message-id <id>', 'only this MessageId')
    .option('--json', 'JSON on stdout');
}

/** Every entry matching, page after page, up to `limit`. */
async function listAll(
  store: {
    list: (
      o: DeadLetterFilter & { limit?: number; cursor?: string },
    ) => Promise<{ items: readonly DeadLetterSummary[]; nextCursor?: string }>;
  },
  filter: DeadLetterFilter,
  limit: number,
): Promise<DeadLetterSummary[]> {
  const found: DeadLetterSummary[] = [];
  let cursor: string | undefined;
  do {
    const page = await store.list({ ...filter, limit: Math.min(1000, limit - found.length), ...(cursor === undefined ? {} : { cursor }) });
    found.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor !== undefined && found.length < limit);
  return found;
}

function line(entry: DeadLetterSummary): string {
  const at = new Date(entry.deadLetteredAt).toISOString();
  return [
    entry.id,
    entry.status,
    entry.reason,
    entry.group,
    entry.type ?? '-',
    entry.messageId,
    `${entry.attempts.length} attempt(s)`,
    at,
  ].join('\t');
}

function bodyOf(entry: DeadLetter): { body: string; bodyEncoding: 'utf8' | 'base64' } {
  const bytes = Buffer.from(entry.body);
  const text = bytes.toString('utf8');
  return Buffer.from(text, 'utf8').equals(bytes)
    ? { body: text, bodyEncoding: 'utf8' }
    : { body: bytes.toString('base64'), bodyEncoding: 'base64' };
}

/** `switchboard dlq ls|show|replay`: a service's dead letters, from its dead-letter store. */
export function register(program: Command, context: CommandContext): void {
  const { io } = context;
  const dlq = program.command('dlq').description('List, inspect and replay dead letters (from a dead-letter store)');

  withFilters(dlq.command('ls').description('List dead letters, oldest first'))
    .option('--status <status>', 'pending, replaying or replayed')
    .option('--limit <n>', 'at most this many (default 100)')
    .action(async (flags: FilterFlags & { status?: string }) => {
      if (flags.status !== undefined && !STATUSES.includes(flags.status as DeadLetterStatus))
        throw CliError.usage(`--status must be one of ${STATUSES.join(', ')}`);
      const store = await openDeadLetterStore(flags.store, io.cwd);
      try {
        const filter = { ...filterOf(flags), ...(flags.status === undefined ? {} : { status: flags.status as DeadLetterStatus }) };
        const entries = await listAll(store, filter, positiveInt('--limit', flags.limit, 100));
        if (flags.json) io.stdout.write(`${JSON.stringify({ deadLetters: entries })}\n`);
        else for (const entry of entries) io.stdout.write(`${line(entry)}\n`);
        if (!flags.json && entries.length === 0) io.stderr.write('no dead letters match\n');
      } finally {
        await store.close();
      }
    });

  dlq
    .command('show')
    .description('One dead letter with its headers, body and attempts')
    .argument('<id>', 'the entry id (from dlq ls)')
    .requiredOption('--store <url>', 'the dead-letter store (env SWITCHBOARD_DEAD_LETTERS)', process.env.SWITCHBOARD_DEAD_LETTERS)
    .option('--json', 'JSON on stdout')
    .action(async (id: string, flags: { store: string; json?: boolean }) => {
      const store = await openDeadLetterStore(flags.store, io.cwd);
      try {
        const entry = await store.get(id);
        if (entry === undefined)
          throw new CliError(new SwitchboardError('SB_NOT_FOUND', { detail: `No dead letter ${id}` }).toProblem(), 1);
        const { headers, body: _bytes, ...summary } = entry;
        // Headers exactly as received (not through `Headers`, which refuses names and values a broker may carry).
        const shown = { ...summary, headers, ...bodyOf(entry) };
        io.stdout.write(flags.json ? `${JSON.stringify(shown)}\n` : `${JSON.stringify(shown, null, 2)}\n`);
      } finally {
        await store.close();
      }
    });

  withFilters(dlq.command('replay').description('Republish dead letters through the broker (same CloudEvent, same MessageId)'))
    .argument('[ids...]', 'entry ids; without them, every pending entry matching the filters (needs a filter or --all)')
    .option('--broker <url>', 'the broker to republish to (env SWITCHBOARD_BROKER)', process.env.SWITCHBOARD_BROKER)
    .option(
      '--receipts <url>',
      "the receiving service's receipt store, to reopen the receipts (env SWITCHBOARD_RECEIPTS)",
      process.env.SWITCHBOARD_RECEIPTS,
    )
    .option('--all', 'every pending entry')
    .option('--limit <n>', 'at most this many entries (default 1000)')
    .option('--dry-run', 'only list what would be replayed')
    .action(async (ids: string[], flags: FilterFlags & { broker?: string; receipts?: string; all?: boolean; dryRun?: boolean }) => {
      const filter = filterOf(flags);
      if (ids.length === 0 && Object.keys(filter).length === 0 && flags.all !== true)
        throw CliError.usage('Name entry ids, a filter (--reason, --type, …) or --all');
      const limit = positiveInt('--limit', flags.limit, 1000);
      if (!flags.dryRun && flags.broker === undefined) throw CliError.usage('--broker is required to replay (or --dry-run)');
      const store = await openDeadLetterStore(flags.store, io.cwd);
      try {
        const selected =
          ids.length > 0
            ? (await Promise.all(ids.map((id) => store.get(id)))).flatMap((entry, i) => {
                if (entry === undefined)
                  throw new CliError(new SwitchboardError('SB_NOT_FOUND', { detail: `No dead letter ${ids[i]}` }).toProblem(), 1);
                return entry.status === 'replayed' ? [] : [entry];
              })
            : await listAll(store, { ...filter, status: 'pending' }, limit);
        const chosen = selected.slice(0, limit);
        if (flags.dryRun) {
          if (flags.json) io.stdout.write(`${JSON.stringify({ dryRun: true, wouldReplay: chosen.length, deadLetters: chosen })}\n`);
          else {
            for (const entry of chosen) io.stdout.write(`${line(entry)}\n`);
            io.stderr.write(`would replay ${chosen.length} dead letter(s)\n`);
          }
          return;
        }
        const [{ connectBroker }, { createMessaging }] = await Promise.all([
          import('@switchboard/connect'),
          import('@switchboard/messaging'),
        ]);
        const broker = await connectBroker(flags.broker as string);
        const receipts = flags.receipts === undefined ? undefined : await openReceiptStore(flags.receipts, io.cwd);
        try {
          const messaging = createMessaging({
            broker,
            service: 'switchboard-cli',
            deadLetters: store,
            ...(receipts === undefined ? {} : { receipts }),
          });
          const replayed: { id: string; messageId: string }[] = [];
          const batch = 100;
          for (let i = 0; i < chosen.length; i += batch) {
            const slice = chosen.slice(i, i + batch);
            const result = await messaging.replay({ ids: slice.map((entry) => entry.id) });
            result.ids.forEach((id, k) => {
              replayed.push({ id, messageId: result.messageIds[k] ?? '' });
            });
            if (chosen.length > batch) io.stderr.write(`replayed ${Math.min(i + batch, chosen.length)}/${chosen.length}\n`);
          }
          if (flags.json) io.stdout.write(`${JSON.stringify({ replayed: replayed.length, entries: replayed })}\n`);
          else {
            for (const entry of replayed) io.stdout.write(`${entry.id}\t${entry.messageId}\n`);
            io.stderr.write(`replayed ${replayed.length} dead letter(s)\n`);
          }
        } finally {
          await broker.close();
          await receipts?.close();
        }
      } finally {
        await store.close();
      }
    });
}
