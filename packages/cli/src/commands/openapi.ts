import type { OpenApiAuth, OpenApiOptions } from '@switchboard/apidocs';
import { generateOpenApi } from '@switchboard/apidocs';
import type { Command } from 'commander';
import type { CommandContext } from '../command.js';
import { collect, list } from '../command.js';
import { CliError } from '../io.js';
import { loadContracts } from '../load.js';
import type { OutputOptions } from '../output.js';
import { emitDocument } from '../output.js';

interface OpenApiFlags extends OutputOptions {
  readonly export?: string[];
  readonly jobs?: string[];
  readonly basePath?: string;
  readonly receipts?: boolean;
  readonly events?: boolean;
  readonly auth?: string[];
  readonly server?: string[];
  readonly title?: string;
  readonly apiVersion?: string;
}

/** `switchboard openapi <contract-module>`: the OpenAPI 3.1 document of one contract. */
export function register(program: Command, context: CommandContext): void {
  program
    .command('openapi')
    .description('Print the OpenAPI 3.1 document of a contract (its HTTP surface)')
    .argument('<contract-module>', 'ES module exporting the contract (JavaScript: the built output)')
    .option('--export <name>', 'the export to use (when the module exports several contracts)', collect)
    .option('--jobs <names>', 'operations enabled as jobs, comma-separated, or "all"', collect)
    .option('--base-path <path>', 'where the service is mounted (createHttpService basePath)')
    .option('--receipts', 'document GET /receipts/{messageId}')
    .option('--events', 'document POST /events (CloudEvents over HTTP)')
    .option('--auth <schemes>', 'authentication configured: "bearer", "mtls", comma-separated', collect)
    .option('--server <url>', 'a server URL to list', collect)
    .option('--title <text>', 'document title (default: the contract name)')
    .option('--api-version <version>', 'document version (default: the contract version)')
    .option('--out <file>', 'write the document to a file instead of stdout')
    .option('--json', 'one JSON report on stdout: { document, warnings } (or { out, warnings })')
    .option('--fail-on-warnings', 'exit 1 when a schema could not be expressed exactly')
    .option('--no-color', 'no colour on stderr (NO_COLOR is honoured too)')
    .action(async (module: string, flags: OpenApiFlags) => {
      const loaded = await loadContracts(module, context.io.cwd, flags.export);
      if (loaded.length > 1) {
        throw CliError.usage(
          `${module} exports several contracts (${loaded.map((entry) => entry.exportName).join(', ')}); pick one with --export`,
        );
      }
      const contract = (loaded[0] as (typeof loaded)[number]).contract;
      const jobs = list(flags.jobs);
      const options: OpenApiOptions = {
        ...(jobs.length === 0 ? {} : { jobs: jobs.includes('all') ? true : jobs }),
        ...(flags.basePath === undefined ? {} : { basePath: flags.basePath }),
        ...(flags.receipts ? { receipts: true } : {}),
        ...(flags.events ? { events: true } : {}),
        ...(flags.auth === undefined ? {} : { auth: auth(list(flags.auth)) }),
        ...(flags.server === undefined ? {} : { servers: flags.server.map((url) => ({ url })) }),
        ...(flags.title === undefined ? {} : { title: flags.title }),
        ...(flags.apiVersion === undefined ? {} : { version: flags.apiVersion }),
      };
      const generated = await generateOpenApi(contract, options).catch((error: unknown) => {
        throw CliError.failure(error);
      });
      await emitDocument(context.io, 'openapi', generated, flags);
    });
}

function auth(schemes: readonly string[]): OpenApiAuth {
  for (const scheme of schemes) {
    if (scheme !== 'bearer' && scheme !== 'mtls') throw CliError.usage(`--auth takes "bearer" or "mtls", not "${scheme}"`);
  }
  return { bearer: schemes.includes('bearer'), mutualTLS: schemes.includes('mtls') };
}
