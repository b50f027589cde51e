/** The preferences (RFC 7240) the job endpoints honour. */
export interface Preferences {
  readonly respondAsync: boolean;
  /** `wait=N`, in seconds. */
  readonly wait: number | undefined;
}

/** Parses `Prefer` (several headers arrive joined by `, `). Unknown preferences are ignored. */
export function parsePrefer(header: string | readonly string[] | undefined): Preferences {
  if (header === undefined) return { respondAsync: false, wait: undefined };
  const text = typeof header === 'string' ? header : header.join(',');
  let respondAsync = false;
  let wait: number | undefined;
  for (const part of text.split(/[,;]/)) {
    const [rawName, rawValue] = part.split('=', 2) as [string, string | undefined];
    const name = rawName.trim().toLowerCase();
    if (name === 'respond-async') respondAsync = true;
    else if (name === 'wait' && rawValue !== undefined) {
      const value = rawValue.trim().replace(/^"|"$/g, '');
      if (/^\d{1,9}$/.test(value)) wait = Number(value);
    }
  }
  return { respondAsync, wait };
}

/** `?wait=N` of a query string, in seconds. */
export function waitParameter(query: string): number | undefined {
  if (query === '') return undefined;
  const value = new URLSearchParams(query).get('wait');
  return value !== null && /^\d{1,9}$/.test(value) ? Number(value) : undefined;
}
