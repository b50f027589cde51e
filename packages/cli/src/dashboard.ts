import { CliError } from './io.js';

/** The dashboard base URL of a service (`http://127.0.0.1:4001`) or of its dashboard (`…/_switchboard`). */
export function dashboardUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw CliError.usage(`${url} is not a URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw CliError.usage(`${url} is not an http(s) URL`);
  const path = parsed.pathname.replace(/\/+$/, '');
  parsed.pathname = path.endsWith('/_switchboard') ? path : `${path}/_switchboard`;
  parsed.search = '';
  parsed.hash = '';
  return parsed.toString().replace(/\/+$/, '');
}

/** The headers of a dashboard request: the token as a bearer token, when there is one. */
export function dashboardHeaders(token: string | undefined, accept = 'application/json'): Record<string, string> {
  return token ? { accept, authorization: `Bearer ${token}` } : { accept };
}

/** What a network failure was (`ECONNREFUSED`, …), for the message. */
export function causeOf(error: unknown): string {
  const reason = (error as { cause?: { code?: string; message?: string } }).cause;
  return reason?.code ?? reason?.message ?? (error instanceof Error ? error.message : String(error));
}

/** GET `{base}{path}` as JSON; an unreachable dashboard or an answer other than 2xx is an error with its status and body. */
export async function dashboardGet<T>(base: string, path: string, token: string | undefined): Promise<T> {
  let response: Response;
  try {
    response = await fetch(`${base}${path}`, { headers: dashboardHeaders(token) });
  } catch (error) {
    throw new Error(`cannot reach ${base}: ${causeOf(error)}`);
  }
  if (!response.ok) throw new Error(`${base}${path.split('?')[0]} answered ${response.status}: ${(await response.text()).slice(0, 300)}`);
  return (await response.json()) as T;
}
