import { SwitchboardError } from '@switchboard/core';

/**
 * Where completion callbacks may go. Each entry is one of:
 * - an origin, `https://hooks.example.com` or `http://127.0.0.1:8080`: that scheme, host and port
 *   (the scheme's default port when none is written);
 * - a host and port, `hooks.example.com:443` (or `[::1]:8080`): that host on that port, over http or https;
 * - a wildcard and port, `*.example.com:443`: any subdomain of it (not the domain itself) on that port.
 * A host entry without a port is refused at configuration (`SB_CONFIG_INVALID`): allowing every
 * port of a host would let submitters probe what listens on it. An empty list allows nothing.
 */
export type CallbackAllowList = readonly string[];

interface Rule {
  matches(url: URL): boolean;
}

const HOST_AND_PORT = /^(\*\.[^:/\s]+|\[[0-9a-f:.]+\]|[^:/\s[\]]+):(\d{1,5})$/;

/** The port a URL goes to, its scheme's default when it names none. */
function portOf(url: URL): string {
  return url.port !== '' ? url.port : url.protocol === 'https:' ? '443' : '80';
}

function rule(entry: string): Rule {
  const text = entry.trim().toLowerCase();
  if (text.length === 0) throw new SwitchboardError('SB_CONFIG_INVALID', { detail: 'Empty callback allow-list entry' });
  if (text.includes('://')) {
    let origin: string;
    try {
      origin = new URL(text).origin;
    } catch (cause) {
      throw new SwitchboardError('SB_CONFIG_INVALID', { detail: `Callback allow-list entry "${entry}" is not an origin`, cause });
    }
    return { matches: (url) => url.origin === origin };
  }
  const match = HOST_AND_PORT.exec(text);
  if (match === null || Number(match[2]) > 65_535) {
    throw new SwitchboardError('SB_CONFIG_INVALID', {
      detail: `Callback allow-list entry "${entry}" needs an explicit port (host:port, *.domain:port) or must be an origin`,
    });
  }
  const host = match[1] as string;
  const port = String(Number(match[2]));
  if (host.startsWith('*.')) {
    const suffix = host.slice(1);
    return { matches: (url) => portOf(url) === port && url.hostname.endsWith(suffix) && url.hostname.length > suffix.length };
  }
  return { matches: (url) => portOf(url) === port && url.hostname === host };
}

const MAX_URL_LENGTH = 2048;

/**
 * Builds the check for callback URLs given at submit. The returned function answers the parsed
 * URL, or throws `SB_CALLBACK_NOT_ALLOWED` for anything that is not http(s), carries credentials,
 * or matches no entry. Redirects are never followed when delivering, so the check cannot be
 * bypassed by a redirecting allowed host.
 */
export function callbackPolicy(allow: CallbackAllowList): (url: string) => URL {
  const rules = allow.map(rule);
  return (value) => {
    const refuse = (why: string): never => {
      throw new SwitchboardError('SB_CALLBACK_NOT_ALLOWED', { detail: why });
    };
    if (value.length > MAX_URL_LENGTH) refuse(`The callback URL is longer than ${MAX_URL_LENGTH} characters`);
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      return refuse('The callback URL is not an absolute URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') refuse('The callback URL must be http: or https:');
    if (url.username !== '' || url.password !== '') refuse('The callback URL must not carry credentials');
    if (!rules.some((candidate) => candidate.matches(url))) refuse(`Callbacks to ${url.host} are not allowed`);
    return url;
  };
}
