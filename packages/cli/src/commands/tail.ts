import type { Command } from 'commander';
import type { CommandContext } from '../command.js';
import { causeOf, dashboardHeaders, dashboardUrl } from '../dashboard.js';
import { CliError, useColor } from '../io.js';

interface TailFlags {
  readonly token?: string;
  readonly json?: boolean;
  readonly backlog?: string;
  readonly count?: string;
  readonly service?: string;
  readonly pattern?: string;
  readonly color?: boolean;
}

/** A recorded event as the dashboard streams it (see `@switchboard/dashboard`'s `FlowEvent`). */
interface TailEvent {
  readonly at: number;
  readonly service: string;
  readonly kind: string;
  readonly [field: string]: unknown;
}

/**
 * `switchboard tail <url>`: the live flows of a service's dashboard, from its SSE stream
 * (`/_switchboard/api/stream`, resumed with `Last-Event-ID` when the connection drops). Pretty
 * lines, or one JSON object per line with `--json`.
 */
export function register(program: Command, context: CommandContext): void {
  program
    .command('tail')
    .description("Print live flows from a service's dashboard (SSE): calls, jobs, messages, events")
    .argument('<url>', 'the service (http://127.0.0.1:4001) or its dashboard (…/_switchboard)')
    .option('--token <token>', 'the dashboard token (default: SWITCHBOARD_DASHBOARD_TOKEN)')
    .option('--json', 'one JSON object per event per line (NDJSON)')
    .option('--backlog <n>', 'start with the last n recorded events', '0')
    .option('--count <n>', 'stop after n events')
    .option('--service <name>', 'only events observed by this service')
    .option('--pattern <pattern>', 'only this pattern: call, job, message or event')
    .option('--no-color', 'no colour (NO_COLOR is honoured too)')
    .action(async (url: string, flags: TailFlags) => {
      const base = dashboardUrl(url);
      const backlog = count(flags.backlog ?? '0', '--backlog');
      const limit = flags.count === undefined ? undefined : count(flags.count, '--count');
      if (flags.pattern !== undefined && !['call', 'job', 'message', 'event'].includes(flags.pattern)) {
        throw CliError.usage('--pattern must be call, job, message or event');
      }
      const token = flags.token ?? context.io.env.SWITCHBOARD_DASHBOARD_TOKEN;
      const color = useColor({ ...context.io, stderr: context.io.stdout }, flags.color);
      let printed = 0;
      let lastId: string | undefined;
      let failures = 0;
      for (;;) {
        const headers = dashboardHeaders(token, 'text/event-stream');
        if (lastId !== undefined) headers['last-event-id'] = lastId;
        let response: Response;
        try {
          response = await fetch(`${base}/api/stream?backlog=${backlog}`, { headers });
        } catch (error) {
          // The first connection must work; later ones are retried (the service may be restarting).
          if (lastId === undefined && printed === 0) throw new Error(`cannot reach ${base}: ${causeOf(error)}`);
          if (++failures > 30) throw new Error(`lost ${base}: ${causeOf(error)}`);
          await new Promise((resolve) => setTimeout(resolve, 1000));
          continue;
        }
        if (!response.ok) {
          const body = await response.text();
          throw new Error(`${base}/api/stream answered ${response.status}: ${body.slice(0, 300)}`);
        }
        failures = 0;
        const reader = (response.body as ReadableStream<Uint8Array>).getReader();
        const decoder = new TextDecoder();
        let buffered = '';
        try {
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            buffered += decoder.decode(value, { stream: true });
            let end = buffered.indexOf('\n\n');
            while (end !== -1) {
              const frame = buffered.slice(0, end);
              buffered = buffered.slice(end + 2);
              end = buffered.indexOf('\n\n');
              const parsed = parseFrame(frame);
              if (parsed === undefined) continue;
              if (parsed.id !== undefined) lastId = parsed.id;
              const event = JSON.parse(parsed.data) as TailEvent;
              if (flags.service !== undefined && event.service !== flags.service) continue;
              if (flags.pattern !== undefined && patternOf(event) !== flags.pattern) continue;
              context.io.stdout.write(flags.json ? `${JSON.stringify(event)}\n` : `${pretty(event, color)}\n`);
              if (limit !== undefined && ++printed >= limit) {
                await reader.cancel().catch(() => {});
                return;
              }
            }
          }
        } catch (error) {
          if (++failures > 30) throw new Error(`lost ${base}: ${causeOf(error)}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    });
}

function count(value: string, flag: string): number {
  if (!/^\d+$/.test(value)) throw CliError.usage(`${flag} must be a whole number`);
  return Number(value);
}

function parseFrame(frame: string): { id?: string; data: string } | undefined {
  let id: string | undefined;
  const data: string[] = [];
  let kind = 'message';
  for (const line of frame.split('\n')) {
    if (line.startsWith('id:')) id = line.slice(3).trim();
    else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    else if (line.startsWith('event:')) kind = line.slice(6).trim();
  }
  if (kind !== 'flow-event' || data.length === 0) return undefined;
  return id === undefined ? { data: data.join('\n') } : { id, data: data.join('\n') };
}

function patternOf(event: TailEvent): string {
  const kind = event.kind;
  if (kind.startsWith('call.')) return 'call';
  if (kind.startsWith('job.')) return 'job';
  if (kind.startsWith('handler.')) return event.via === 'job' || event.jobId ? 'job' : event.via === 'message' ? 'message' : 'call';
  if (kind.startsWith('claimcheck.')) return 'event';
  if (kind.startsWith('message.') || kind === 'dead-letter') return String(event.topic ?? '').endsWith('.events') ? 'event' : 'message';
  return 'other';
}

const COLORS: Record<string, number> = { call: 34, job: 35, message: 32, event: 33, other: 90 };

function pretty(event: TailEvent, color: boolean): string {
  const d = new Date(event.at);
  const time = `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}:${String(d.getSeconds()).padStart(2, '0')}.${String(d.getMilliseconds()).padStart(3, '0')}`;
  const pattern = patternOf(event);
  const paint = (text: string, code: number) => (color ? `\u001b[${code}m${text}\u001b[39m` : text);
  const name = String(event.operation ?? event.type ?? '');
  const fields: string[] = [];
  const add = (label: string, value: unknown) => {
    if (value !== undefined && value !== null && value !== '') fields.push(`${label}=${String(value)}`);
  };
  add('status', event.status);
  add('outcome', event.outcome);
  add('attempt', event.attempt);
  add('group', event.group);
  add('reason', event.reason);
  if (typeof event.durationMs === 'number') fields.push(`${Math.round(event.durationMs * 10) / 10}ms`);
  add('msg', event.messageId);
  add('job', event.jobId);
  add('trace', typeof event.traceId === 'string' ? event.traceId.slice(0, 12) : undefined);
  const failed = event.outcome === 'error' || event.outcome === 'dead-letter' || event.kind === 'dead-letter';
  const kind = paint(event.kind.padEnd(16), failed ? 31 : (COLORS[pattern] ?? 90));
  return `${time} ${event.service.padEnd(12)} ${kind} ${name} ${fields.join(' ')}`.trimEnd();
}
