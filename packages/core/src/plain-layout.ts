import type { Headers } from './broker.js';

const NO_HEADERS: Headers = Object.freeze({});

/**
 * The headers of a message in the plain layout (a JSON object of strings in a table column, see
 * `docs/brokers.md`) as a `Headers` record, whoever wrote them: a string value stays as it is, any
 * other value becomes its JSON text (`5` → `"5"`), and anything but an object (`null`, an array,
 * a string) is no headers at all. The message is still delivered: whether it is a CloudEvent is
 * for the messaging layer to say (and to dead-letter it with the reason when it is not).
 */
export function plainHeaders(value: unknown): Headers {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return NO_HEADERS;
  const record = value as Record<string, unknown>;
  for (const name in record) {
    if (typeof record[name] === 'string') continue;
    const strings: Record<string, string> = {};
    for (const key in record) {
      const item = record[key];
      strings[key] = typeof item === 'string' ? item : JSON.stringify(item);
    }
    return strings;
  }
  return record as Headers;
}

/** {@link plainHeaders} of JSON text; text that is not JSON is no headers. */
export function plainHeadersFromJson(text: string): Headers {
  if (text === '{}') return NO_HEADERS;
  try {
    return plainHeaders(JSON.parse(text));
  } catch {
    return NO_HEADERS;
  }
}
