import type { CesqlType, CesqlValue } from './ast.js';
import type { EvaluationError } from './errors.js';
import { hasSurrogates } from './like.js';
import { codePointLength, INT_MAX, INT_MIN, parseBoolean, parseInteger, toText } from './values.js';

/** A parameter type: one of the CESQL types (the argument is cast to it), or `Any` (taken as it is). */
export type ParameterType = CesqlType | 'Any';

/** Reports an error from inside a function; the function still returns its value (section 3.5.3). */
export type FunctionFailure = (kind: EvaluationError['kind'], message: string) => void;

export interface FunctionOverload {
  readonly params: readonly ParameterType[];
  /** Type of the arguments after `params`, for a variadic function. */
  readonly variadic?: ParameterType;
  readonly returns: CesqlType;
  readonly impl: (args: readonly CesqlValue[], fail: FunctionFailure) => CesqlValue;
}

/** Characters (code points) of `text` from `from` to `to`, as slice() takes them. */
function sliceChars(text: string, from: number, to?: number): string {
  if (!hasSurrogates(text)) return text.slice(from, to);
  return Array.from(text).slice(from, to).join('');
}

const TRIM = /^\p{White_Space}+|\p{White_Space}+$/gu;

const str = (value: CesqlValue) => value as string;
const int = (value: CesqlValue) => value as number;

function substring(args: readonly CesqlValue[], fail: FunctionFailure): CesqlValue {
  const text = str(args[0] as CesqlValue);
  const pos = int(args[1] as CesqlValue);
  const length = codePointLength(text);
  if (pos > length || pos < -length) {
    fail('functionEvaluation', `SUBSTRING position ${pos} is outside the string (length ${length})`);
    return '';
  }
  if (args.length === 3) {
    const len = int(args[2] as CesqlValue);
    if (len < 0) {
      fail('functionEvaluation', `SUBSTRING length ${len} is negative`);
      return '';
    }
    if (pos === 0) return '';
    const from = pos > 0 ? pos - 1 : length + pos;
    return sliceChars(text, from, Math.min(length, from + len));
  }
  if (pos === 0) return '';
  return sliceChars(text, pos > 0 ? pos - 1 : length + pos);
}

/**
 * The built-in functions every CESQL engine must have (section 3.5): string manipulation, ABS, and
 * the casting functions INT, BOOL and STRING that the v1 TCK exercises, plus IS_INT and IS_BOOL from
 * the CESQL working draft (still offered by the Go and Java SDKs). Names are upper-case; lookup is
 * by name and arity.
 */
export const BUILTIN_FUNCTIONS: Readonly<Record<string, readonly FunctionOverload[]>> = {
  LENGTH: [{ params: ['String'], returns: 'Integer', impl: ([x]) => codePointLength(str(x as CesqlValue)) }],
  CONCAT: [{ params: [], variadic: 'String', returns: 'String', impl: (args) => args.join('') }],
  CONCAT_WS: [
    {
      params: ['String'],
      variadic: 'String',
      returns: 'String',
      impl: ([delimiter, ...rest]) => rest.join(str(delimiter as CesqlValue)),
    },
  ],
  LOWER: [{ params: ['String'], returns: 'String', impl: ([x]) => str(x as CesqlValue).toLowerCase() }],
  UPPER: [{ params: ['String'], returns: 'String', impl: ([x]) => str(x as CesqlValue).toUpperCase() }],
  TRIM: [{ params: ['String'], returns: 'String', impl: ([x]) => str(x as CesqlValue).replace(TRIM, '') }],
  LEFT: [
    {
      params: ['String', 'Integer'],
      returns: 'String',
      impl: ([x, y], fail) => {
        const text = str(x as CesqlValue);
        const count = int(y as CesqlValue);
        if (count < 0) {
          fail('functionEvaluation', `LEFT count ${count} is negative`);
          return text;
        }
        return sliceChars(text, 0, count);
      },
    },
  ],
  RIGHT: [
    {
      params: ['String', 'Integer'],
      returns: 'String',
      impl: ([x, y], fail) => {
        const text = str(x as CesqlValue);
        const count = int(y as CesqlValue);
        if (count < 0) {
          fail('functionEvaluation', `RIGHT count ${count} is negative`);
          return text;
        }
        const length = codePointLength(text);
        return count >= length ? text : sliceChars(text, length - count);
      },
    },
  ],
  SUBSTRING: [
    { params: ['String', 'Integer'], returns: 'String', impl: substring },
    { params: ['String', 'Integer', 'Integer'], returns: 'String', impl: substring },
  ],
  ABS: [
    {
      params: ['Integer'],
      returns: 'Integer',
      impl: ([x], fail) => {
        const value = int(x as CesqlValue);
        if (value === INT_MIN) {
          fail('math', 'ABS(-2147483648) overflows the 32-bit range');
          return INT_MAX;
        }
        return Math.abs(value);
      },
    },
  ],
  INT: [
    {
      params: ['Any'],
      returns: 'Integer',
      impl: ([x], fail) => {
        if (typeof x === 'number') return x;
        if (typeof x === 'boolean') return x ? 1 : 0;
        const parsed = parseInteger(x as string);
        if (parsed === undefined) {
          fail('cast', `Cannot cast the String ${JSON.stringify(x)} to Integer`);
          return 0;
        }
        return parsed;
      },
    },
  ],
  BOOL: [
    {
      params: ['Any'],
      returns: 'Boolean',
      impl: ([x], fail) => {
        if (typeof x === 'boolean') return x;
        if (typeof x === 'number') return x !== 0;
        const parsed = parseBoolean(x as string);
        if (parsed === undefined) {
          fail('cast', `Cannot cast the String ${JSON.stringify(x)} to Boolean`);
          return false;
        }
        return parsed;
      },
    },
  ],
  STRING: [{ params: ['Any'], returns: 'String', impl: ([x]) => toText(x as CesqlValue) }],
  IS_INT: [{ params: ['String'], returns: 'Boolean', impl: ([x]) => parseInteger(str(x as CesqlValue)) !== undefined }],
  IS_BOOL: [{ params: ['String'], returns: 'Boolean', impl: ([x]) => parseBoolean(str(x as CesqlValue)) !== undefined }],
};

/** The overload of `name` (upper-case) that takes `arity` arguments, if any. */
export function resolveFunction(name: string, arity: number): FunctionOverload | undefined {
  const overloads = Object.hasOwn(BUILTIN_FUNCTIONS, name) ? BUILTIN_FUNCTIONS[name] : undefined;
  if (overloads === undefined) return undefined;
  return overloads.find((overload) =>
    overload.variadic === undefined ? overload.params.length === arity : arity >= overload.params.length,
  );
}

/** How the arities of a known function read in an error message, e.g. `2 or 3`, `at least 1`. */
export function describeArities(name: string): string | undefined {
  const overloads = Object.hasOwn(BUILTIN_FUNCTIONS, name) ? BUILTIN_FUNCTIONS[name] : undefined;
  if (overloads === undefined) return undefined;
  return overloads.map((o) => (o.variadic === undefined ? String(o.params.length) : `at least ${o.params.length}`)).join(' or ');
}
