import type { AsyncApiEngine, AsyncApiOptions } from '@switchboard/apidocs';
import { engineFromUrl, generateAsyncApi } from '@switchboard/apidocs';
import type { Command } from 'commander';
import type { CommandContext } from '../command.js';
import { collect } from '../command.js';
import { CliError } from '../io.js';
import { loadContracts } from '../load.js';
import type { OutputOptions } from '../output.js';
import { emitDocument } from '../output.js';

interface AsyncApiFlags extends OutputOptions {
  readonly export?: string[];
  readonly engine?: string[];
  readonly title?: string;
  readonly apiVersion?: string;
}

/** `switchboard asyncapi <contract-module>`: the AsyncAPI 3.0 document of the contracts' messages and events. */
export function register(program: Command, context: CommandContext): void {
  program
    .command('asyncapi')
    .description('Print the AsyncAPI 3.0 document of contracts (their messages and events on the brokers)')
    .argument('<contract-module>', 'ES module exporting the contracts (JavaScript: the built output)')
    .option('--export <name>', 'an export to use (default: every exported contract)', collect)
    .option('--engine <url>', 'an engine URL (sqlite:..., nats://..., amqp://..., redis://..., postgres://..., mqtt://...)', collect)
    .option('--title <text>', 'document title (default: the contract names)')
    .option('--api-version <version>', 'document version (default: the contract version)')
    .option('--out <file>', 'write the document to a file instead of stdout')
    .option('--json', 'one JSON report on stdout: { document, warnings } (or { out, warnings })')
    .option('--fail-on-warnings', 'exit 1 when a schema could not be expressed exactly')
    .option('--no-color', 'no colour on stderr (NO_COLOR is honoured too)')
    .action(async (module: string, flags: AsyncApiFlags) => {
      const loaded = await loadContracts(module, context.io.cwd, flags.export);
      const engines: AsyncApiEngine[] = [];
      for (const url of flags.engine ?? []) {
        try {
          engines.push(engineFromUrl(url));
        } catch (error) {
          throw CliError.usage(error instanceof Error ? error.message : String(error));
        }
      }
      const options: AsyncApiOptions = {
        ...(engines.length === 0 ? {} : { engines }),
        ...(flags.title === undefined ? {} : { title: flags.title }),
        ...(flags.apiVersion === undefined ? {} : { version: flags.apiVersion }),
      };
      const generated = await generateAsyncApi(
        loaded.map((entry) => entry.contract),
        options,
      ).catch((error: unknown) => {
        throw CliError.failure(error);
      });
      await emitDocument(context.io, 'asyncapi', generated, flags);
    });
}
