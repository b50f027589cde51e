/**
 * The `switchboard` command, run as users run it: its `bin` (which loads the built `dist/`) in a child process.
 * `npm test` builds first (`tsc -b`); run `npm run build` before this file alone.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Parser } from '@asyncapi/parser';
import { Validator } from '@seriousme/openapi-schema-validator';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..', '..');
const bin = join(root, 'packages', 'cli', 'bin', 'switchboard.js');
const built = join(root, 'packages', 'cli', 'dist', 'bin.js');
const demo = join(root, 'examples', 'demo', 'dist', 'contracts.js');
const odd = join(import.meta.dirname, 'fixtures', 'odd-contract.mjs');

function switchboard(args: readonly string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [bin, ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', ...env },
    timeout: 60_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

async function openApiErrors(document: object): Promise<unknown[]> {
  const result = await new Validator().validate(document as Parameters<Validator['validate']>[0]);
  return result.valid ? [] : ((result.errors as unknown[] | undefined) ?? ['invalid']);
}

/** Spectral severities: 0 error, 1 warning. */
async function asyncApiDiagnostics(document: object): Promise<{ errors: string[]; warnings: string[] }> {
  const { diagnostics } = await new Parser().parse(JSON.stringify(document));
  const at = (severity: number) => diagnostics.filter((d) => d.severity === severity).map((d) => `${d.code}: ${d.message}`);
  return { errors: at(0), warnings: at(1) };
}

function problem(stderr: string): Record<string, unknown> {
  const lines = stderr.trim().split('\n');
  return JSON.parse(lines[lines.length - 1] as string) as Record<string, unknown>;
}

describe('switchboard (the built CLI)', () => {
  it('is built', () => {
    expect(existsSync(built), `${built} is missing: run npm run build`).toBe(true);
    expect(existsSync(demo), `${demo} is missing: run npm run build`).toBe(true);
  });

  it('openapi prints a valid OpenAPI 3.1 document of the demo’s ServiceB, with its job operation', async () => {
    const { code, stdout, stderr } = switchboard([
      'openapi',
      'examples/demo/dist/contracts.js',
      '--export',
      'serviceB',
      '--jobs',
      'analyze',
    ]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const document = JSON.parse(stdout) as { paths: Record<string, { post?: { responses: object } }> };
    expect(await openApiErrors(document)).toEqual([]);
    expect(Object.keys(document.paths)).toEqual(expect.arrayContaining(['/ops/save', '/ops/analyze', '/jobs/{id}']));
    expect(document.paths['/ops/analyze']?.post?.responses).toHaveProperty('202');
    expect(document.paths['/ops/save']?.post?.responses).not.toHaveProperty('202');
  });

  it('asyncapi prints a valid AsyncAPI 3.0 document of every exported contract, on the engines named', async () => {
    const { code, stdout } = switchboard(['asyncapi', demo, '--engine', 'nats://127.0.0.1:4222']);
    expect(code).toBe(0);
    const document = JSON.parse(stdout);
    const diagnostics = await asyncApiDiagnostics(document);
    expect(diagnostics.errors).toEqual([]);
    expect(diagnostics.warnings).toEqual([]);
    expect(Object.keys(document.channels)).toEqual([
      'service-a.messages',
      'service-a.events',
      'service-b.messages',
      'service-b.events',
      'service-c.messages',
    ]);
    expect(document.servers.nats).toMatchObject({ host: '127.0.0.1:4222', protocol: 'nats' });
  });

  it('--out writes the file, --json reports on stdout', () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchboard-cli-'));
    try {
      const out = join(dir, 'openapi.json');
      const written = switchboard(['openapi', demo, '--export', 'serviceA', '--out', out]);
      expect(written.code).toBe(0);
      expect(written.stdout).toBe('');
      expect(written.stderr).toBe(`wrote openapi to ${out} (0 warnings)\n`);
      expect(JSON.parse(readFileSync(out, 'utf8')).info.title).toBe('service-a');

      const report = switchboard(['openapi', demo, '--export', 'serviceA', '--out', out, '--json']);
      expect(report.code).toBe(0);
      expect(report.stderr).toBe('');
      expect(JSON.parse(report.stdout)).toEqual({ out, warnings: [] });
      const inline = switchboard(['asyncapi', demo, '--json']);
      expect(Object.keys(JSON.parse(inline.stdout))).toEqual(['document', 'warnings']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('prints the warnings of unrepresentable schemas on stderr, coloured only when asked, and --fail-on-warnings exits 1', () => {
    const plain = switchboard(['openapi', odd]);
    expect(plain.code).toBe(0);
    expect(JSON.parse(plain.stdout).openapi).toBe('3.1.1');
    expect(plain.stderr).toBe(
      'warning: reminders operation remind input (#/components/schemas/reminders.remind.Input): Date cannot be represented in JSON Schema; documented as any value\n',
    );
    const forced = switchboard(['openapi', odd], { FORCE_COLOR: '1' });
    expect(forced.stderr.startsWith('\u001b[33mwarning\u001b[39m: ')).toBe(true);
    const noColor = switchboard(['openapi', odd], { FORCE_COLOR: '1', NO_COLOR: '1' });
    expect(noColor.stderr).toBe(plain.stderr);
    const flag = switchboard(['openapi', odd, '--no-color'], { FORCE_COLOR: '1' });
    expect(flag.stderr).toBe(plain.stderr);
    const json = switchboard(['openapi', odd, '--json']);
    expect(JSON.parse(json.stdout).warnings).toEqual([
      {
        pointer: '#/components/schemas/reminders.remind.Input',
        subject: 'reminders operation remind input',
        message: 'Date cannot be represented in JSON Schema',
      },
    ]);
    const strict = switchboard(['openapi', odd, '--fail-on-warnings']);
    expect(strict.code).toBe(1);
    expect(problem(strict.stderr)).toMatchObject({ code: 'SB_CONFIG_INVALID', status: 500 });
  });

  it('exits 2 on usage errors, with a problem document on stderr', () => {
    const cases: Array<[string[], string]> = [
      [['openapi', demo], 'exports several contracts (serviceA, serviceB, serviceC); pick one with --export'],
      [['openapi', demo, '--export', 'nope'], 'has no contract exported as nope (contracts: serviceA, serviceB, serviceC)'],
      [['openapi', demo, '--bogus'], "unknown option '--bogus'"],
      [['openapi'], "missing required argument 'contract-module'"],
      [['openapi', demo, '--export', 'serviceB', '--auth', 'basic'], '--auth takes "bearer" or "mtls", not "basic"'],
      [['asyncapi', demo, '--engine', 'ftp://x'], 'unknown engine URL'],
      [['nope'], "unknown command 'nope'"],
    ];
    for (const [args, detail] of cases) {
      const { code, stdout, stderr } = switchboard(args);
      expect(code, args.join(' ')).toBe(2);
      expect(stdout).toBe('');
      const body = problem(stderr);
      expect(body).toMatchObject({ type: 'urn:switchboard:error:bad-request', code: 'SB_BAD_REQUEST', status: 400 });
      expect(body.detail as string).toContain(detail);
    }
    const bare = switchboard([]);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toContain('Usage: switchboard');
  });

  it('exits 1 when the module is missing, fails to load or has no contract', () => {
    const cases: Array<[string, string]> = [
      ['missing.mjs', 'SB_NOT_FOUND'],
      [join(import.meta.dirname, 'fixtures', 'broken-module.mjs'), 'SB_CONFIG_INVALID'],
      [join(root, 'packages', 'cli', 'dist', 'io.js'), 'SB_NOT_FOUND'],
    ];
    for (const [module, code] of cases) {
      const result = switchboard(['asyncapi', module]);
      expect(result.code, module).toBe(1);
      expect(problem(result.stderr)).toMatchObject({ code });
    }
    expect(problem(switchboard(['asyncapi', join(import.meta.dirname, 'fixtures', 'broken-module.mjs')]).stderr).detail).toContain(
      'this module fails to load',
    );
  });

  it('answers --help and --version with exit 0', () => {
    const help = switchboard(['openapi', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--export <name>');
    expect(switchboard(['--version'])).toMatchObject({ code: 0, stdout: '0.1.0\n' });
  });
});
