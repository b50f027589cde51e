import { parse as parseArray } from 'postgres-array';

/**
 * From PostgreSQL's text output to JSON values, per column type. The replication connection sets
 * `DateStyle=ISO`, `TimeZone=UTC`, `IntervalStyle=postgres` and `bytea_output=hex`, so the text forms
 * below are the only ones that arrive. Every value is JSON-native, so what a change source validates
 * is exactly what a receiver reads back from the event:
 *
 * | PostgreSQL                                  | JSON                                                |
 * | ------------------------------------------- | --------------------------------------------------- |
 * | `boolean`                                   | `true` / `false`                                    |
 * | `smallint`, `integer`, `oid`, `real`, `double precision` | number (`NaN`, `Infinity`: the string)  |
 * | `bigint`, `numeric`, `money`                | string (no precision lost)                          |
 * | `json`, `jsonb`                             | the parsed value                                    |
 * | `timestamp with time zone`                  | RFC 3339 string, UTC: `2026-05-01T12:34:56.123456Z` |
 * | `timestamp`                                 | `2026-05-01T12:34:56.123456` (no offset)            |
 * | `date`, `time`, `interval`, `uuid`, text types, enums, others | the text as PostgreSQL writes it  |
 * | `bytea`                                     | base64 string                                       |
 * | arrays of the above                         | JSON arrays (nested for more dimensions)            |
 *
 * Domains are read as their base type.
 */
export type Converter = (text: string) => unknown;

const identity: Converter = (text) => text;
const bool: Converter = (text) => text === 't';
const integer: Converter = (text) => Number.parseInt(text, 10);
const float: Converter = (text) => {
  const n = Number(text);
  return Number.isFinite(n) ? n : text;
};
const json: Converter = (text) => JSON.parse(text);
const bytea: Converter = (text) => (text.startsWith('\\x') ? Buffer.from(text.slice(2), 'hex').toString('base64') : text);

/** `2026-05-01 12:34:56.123456` → `2026-05-01T12:34:56.123456`. */
const timestamp: Converter = (text) => (/^\d{4,}-\d\d-\d\d \d/.test(text) ? text.replace(' ', 'T') : text);

/** `2026-05-01 12:34:56.123456+00` → `2026-05-01T12:34:56.123456Z`; other offsets get their minutes. */
const timestamptz: Converter = (text) => {
  const match = /^(\d{4,}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)([+-]\d\d)(?::?(\d\d))?(?::?(\d\d))?$/.exec(text);
  if (match === null) return text; // infinity, BC dates: as PostgreSQL writes them
  const [, date, time, hours, minutes, seconds] = match;
  if (seconds !== undefined) return text;
  const offset = hours === '+00' && (minutes === undefined || minutes === '00') ? 'Z' : `${hours}:${minutes ?? '00'}`;
  return `${date}T${time}${offset}`;
};

const SCALARS = new Map<number, Converter>([
  [16, bool],
  [17, bytea],
  [20, identity], // int8
  [21, integer],
  [23, integer],
  [26, integer],
  [700, float],
  [701, float],
  [1700, identity], // numeric
  [114, json],
  [3802, json],
  [1114, timestamp],
  [1184, timestamptz],
]);

/** Array type OID → element type OID, for the built-in array types. */
const ARRAYS = new Map<number, number>([
  [1000, 16],
  [1001, 17],
  [1005, 21],
  [1007, 23],
  [1016, 20],
  [1028, 26],
  [1021, 700],
  [1022, 701],
  [1231, 1700],
  [199, 114],
  [3807, 3802],
  [1115, 1114],
  [1185, 1184],
  [1182, 1082],
  [1009, 25],
  [1015, 1043],
  [1014, 1042],
  [2951, 2950],
]);

/** What the catalog says about a column type the built-in tables do not know (domains, arrays of domains). */
export interface TypeInfo {
  /** A domain's base type. */
  readonly baseOid?: number;
  /** An array type's element type. */
  readonly elementOid?: number;
}

/** The converter of a column of type `typeOid`; `types` resolves domains and other arrays. */
export function converterFor(typeOid: number, types: ReadonlyMap<number, TypeInfo> = new Map()): Converter {
  for (let depth = 0; depth < 8; depth++) {
    const scalar = SCALARS.get(typeOid);
    if (scalar !== undefined) return scalar;
    const element = ARRAYS.get(typeOid) ?? types.get(typeOid)?.elementOid;
    if (element !== undefined) {
      const convert = converterFor(element, types);
      return (text) => parseArray(text, convert);
    }
    const base = types.get(typeOid)?.baseOid;
    if (base === undefined) return identity;
    typeOid = base;
  }
  return identity;
}
