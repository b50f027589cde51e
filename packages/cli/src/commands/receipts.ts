import { SwitchboardError } from '@switchboard/core';
import type { Command } from 'commander';
import type { CommandContext } from '../command.js';
import { CliError } from '../io.js';

interface ReceiptFlags {
  readonly url: string;
  readonly source: string;
  readonly wait?: string;
  readonly group?: string;
  readonly json?: boolean;
}

/** `switchboard receipts <messageId>`: what the receiving service knows of a message (its `GET /receipts/{id}`). */
export function register(program: Command, context: CommandContext): void {
  const { io } = context;
  program
    .command('receipts')
    .description("A message's receipt, asked from the receiving service over HTTP")
    .argument('<messageId>', 'the MessageId (CloudEvents id) the send answered')
    .requiredOption('--url <url>', "the receiving service's base URL")
    .requiredOption('--source <source>', 'the CloudEvents source of the message (the sending service)')
    .option('--wait <seconds>', 'wait up to this long for every group to finish')
    .option('--group <group>', 'with --wait: until this group finished')
    .option('--json', 'the receipt document as JSON on stdout')
    .action(async (messageId: string, flags: ReceiptFlags) => {
      const seconds = flags.wait === undefined ? undefined : Number(flags.wait);
      if (seconds !== undefined && !(seconds > 0 && seconds <= 3600)) throw CliError.usage('--wait must be between 0 and 3600 seconds');
      const { fetchReceipt } = await import('@switchboard/messaging');
      const document = await fetchReceipt(flags.url, messageId, {
        source: flags.source,
        ...(seconds === undefined
          ? {}
          : { wait: { timeoutMs: seconds * 1000, ...(flags.group === undefined ? {} : { group: flags.group }) } }),
      });
      if (document === undefined) {
        throw new CliError(
          new SwitchboardError('SB_RECEIPT_NOT_FOUND', {
            detail: `${flags.url} has no receipt of ${messageId} from ${flags.source}`,
          }).toProblem(),
          1,
        );
      }
      if (flags.json) {
        io.stdout.write(`${JSON.stringify(document)}\n`);
        return;
      }
      io.stdout.write(`${document.messageId} from ${document.source}: ${document.done ? 'done' : 'in progress'}\n`);
      for (const group of document.groups) {
        const error = group.error === undefined ? '' : `\t${group.error.code}: ${group.error.detail ?? group.error.title}`;
        io.stdout.write(`${group.group}\t${group.state}\t${group.attempts} attempt(s)\t${group.updatedAt}${error}\n`);
      }
    });
}
