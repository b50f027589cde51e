import type { CloudEvent } from '@switchboard/core';
import type { BinaryNode, CallNode, CesqlType, CesqlValue, Expression, InNode } from './ast.js';
import { type EvaluationError, evaluationError, filterError } from './errors.js';
import { describeArities, type ParameterType, resolveFunction } from './functions.js';
import { compileLike } from './like.js';
import { parse } from './parser.js';
import { attributeReader, INT_MAX, INT_MIN, parseBoolean, parseInteger, toText, zeroOf } from './values.js';

/** What evaluating an expression gives: a value and the errors met (section 3.3), at most one here. */
export interface EvaluationResult {
  readonly value: CesqlValue;
  readonly errors: readonly EvaluationError[];
}

/** A compiled CESQL expression: parsed once, evaluated on many events. */
export interface CompiledFilter {
  /** The expression as given. */
  readonly expression: string;
  /** Its syntax tree, for engines that push the filter down to the broker. */
  readonly ast: Expression;
  /** Evaluates on one event: the value and the errors met. Never throws for a well-formed event. */
  evaluate(event: CloudEvent): EvaluationResult;
  /**
   * The subscription filter verdict (section 1.2): true only when the value is the Boolean `true`
   * and evaluation met no error. A missing attribute, a failed cast, a division by zero or a
   * non-Boolean result all mean no match. Comparisons, LIKE, IN and EXISTS allocate nothing when no
   * error occurs (function calls build their argument list).
   */
  matches(event: CloudEvent): boolean;
}

interface Context {
  event: CloudEvent;
  /** The first error met; once set, every enclosing operator returns its zero value. */
  error: EvaluationError | undefined;
}

type Evaluator = (ctx: Context) => CesqlValue;

/**
 * Compiles an expression exactly as the CESQL v1 spec defines it: a syntax error throws
 * `SB_FILTER_INVALID` (with `offset`, `line`, `column`), while an unknown function or a wrong number
 * of arguments is reported when evaluated (value `false` and a `missingFunction` error), as section
 * 3.5 says. This is the form the official TCK runs against.
 */
export function compileExpression(expression: string): CompiledFilter {
  return build(expression, parse(expression));
}

/**
 * Compiles a subscription filter: like {@link compileExpression}, and also refuses at compile time,
 * with `SB_FILTER_INVALID` and the position, what can only fail at run time or reads two ways: an
 * unknown function, a known function with the wrong number of arguments, and AND/OR/XOR mixed
 * without parentheses (CESQL groups them left to right with equal precedence, unlike SQL).
 */
export function compileFilter(expression: string): CompiledFilter {
  const ast = parse(expression, { requireParenthesesForMixedLogic: true });
  checkFunctions(expression, ast);
  return build(expression, ast);
}

function checkFunctions(text: string, node: Expression): void {
  switch (node.kind) {
    case 'call': {
      if (resolveFunction(node.name, node.args.length) === undefined) {
        const arities = describeArities(node.name);
        const message =
          arities === undefined
            ? `Unknown function ${node.name}`
            : `${node.name} takes ${arities} argument${arities === '1' ? '' : 's'}, not ${node.args.length}`;
        throw filterError(text, node.start, message, 'missingFunction');
      }
      for (const arg of node.args) checkFunctions(text, arg);
      return;
    }
    case 'binary':
      checkFunctions(text, node.left);
      checkFunctions(text, node.right);
      return;
    case 'not':
    case 'negate':
    case 'like':
      checkFunctions(text, node.operand);
      return;
    case 'in':
      checkFunctions(text, node.operand);
      for (const element of node.set) checkFunctions(text, element);
      return;
    default:
      return;
  }
}

/** A placeholder so the shared context never keeps the last event alive. */
const NO_EVENT = Object.freeze({ specversion: '1.0', id: '', source: '', type: '' }) as CloudEvent;

function build(expression: string, ast: Expression): CompiledFilter {
  const root = compileNode(ast);
  // One context per compiled filter: evaluation is synchronous and never re-enters.
  const ctx: Context = { event: NO_EVENT, error: undefined };
  return {
    expression,
    ast,
    evaluate(event) {
      ctx.event = event;
      ctx.error = undefined;
      try {
        const value = root(ctx);
        return { value, errors: ctx.error === undefined ? [] : [ctx.error] };
      } finally {
        ctx.event = NO_EVENT;
      }
    },
    matches(event) {
      ctx.event = event;
      ctx.error = undefined;
      try {
        return root(ctx) === true && ctx.error === undefined;
      } finally {
        ctx.event = NO_EVENT;
      }
    },
  };
}

function fail(ctx: Context, error: EvaluationError): void {
  if (ctx.error === undefined) ctx.error = error;
}

// Implicit casts (section 3.7). Each reports a cast error on the operand and returns the zero value.

function castInteger(ctx: Context, value: CesqlValue, node: Expression): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'boolean') return value ? 1 : 0;
  const parsed = parseInteger(value);
  if (parsed !== undefined) return parsed;
  fail(ctx, evaluationError('cast', `Cannot cast the String ${JSON.stringify(value)} to Integer`, node));
  return 0;
}

/**
 * String → Boolean is `true`/`false` in any case. Integer → Boolean is refused when implicit: the
 * official TCK expects `NOT 10` to give a cast error (its "Invalid int cast" case), while the
 * explicit `BOOL(10)` is `true`.
 */
function castBoolean(ctx: Context, value: CesqlValue, node: Expression): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string') {
    const parsed = parseBoolean(value);
    if (parsed !== undefined) return parsed;
    fail(ctx, evaluationError('cast', `Cannot cast the String ${JSON.stringify(value)} to Boolean`, node));
    return false;
  }
  fail(ctx, evaluationError('cast', `An Integer is not implicitly a Boolean (write BOOL(x) or x <> 0)`, node));
  return false;
}

function castTo(ctx: Context, value: CesqlValue, type: ParameterType, node: Expression): CesqlValue {
  switch (type) {
    case 'String':
      return toText(value);
    case 'Integer':
      return castInteger(ctx, value, node);
    case 'Boolean':
      return castBoolean(ctx, value, node);
    default:
      return value;
  }
}

function compileNode(node: Expression): Evaluator {
  switch (node.kind) {
    case 'literal': {
      const value = node.value;
      return () => value;
    }
    case 'attribute': {
      const read = attributeReader(node.name);
      const missing = evaluationError('missingAttribute', `The event has no attribute '${node.name}'`, node);
      return (ctx) => {
        const value = read(ctx.event);
        if (value === undefined) {
          fail(ctx, missing);
          return false;
        }
        return value;
      };
    }
    case 'exists': {
      const read = attributeReader(node.name);
      return (ctx) => read(ctx.event) !== undefined;
    }
    case 'not': {
      const operand = compileNode(node.operand);
      const operandNode = node.operand;
      return (ctx) => {
        const value = operand(ctx);
        if (ctx.error !== undefined) return false;
        return !castBoolean(ctx, value, operandNode);
      };
    }
    case 'negate': {
      const operand = compileNode(node.operand);
      const operandNode = node.operand;
      const overflow = evaluationError('math', '-(-2147483648) overflows the 32-bit range', node);
      return (ctx) => {
        const value = operand(ctx);
        if (ctx.error !== undefined) return 0;
        const n = castInteger(ctx, value, operandNode);
        if (n === INT_MIN) {
          fail(ctx, overflow);
          return INT_MAX;
        }
        return 0 - n;
      };
    }
    case 'like': {
      const operand = compileNode(node.operand);
      const match = compileLike(node.pattern);
      const negated = node.negated;
      return (ctx) => {
        const value = operand(ctx);
        if (ctx.error !== undefined) return false;
        return match(typeof value === 'string' ? value : toText(value)) !== negated;
      };
    }
    case 'in':
      return compileIn(node);
    case 'call':
      return compileCall(node);
    case 'binary':
      return compileBinary(node);
  }
}

function compileBinary(node: BinaryNode): Evaluator {
  const left = compileNode(node.left);
  const right = compileNode(node.right);
  const leftNode = node.left;
  const rightNode = node.right;
  switch (node.operator) {
    case 'AND':
      return (ctx) => {
        const l = left(ctx);
        if (ctx.error !== undefined || !castBoolean(ctx, l, leftNode) || ctx.error !== undefined) return false;
        const r = right(ctx);
        if (ctx.error !== undefined) return false;
        return castBoolean(ctx, r, rightNode);
      };
    case 'OR':
      return (ctx) => {
        const l = left(ctx);
        if (ctx.error !== undefined) return false;
        if (castBoolean(ctx, l, leftNode)) return true;
        if (ctx.error !== undefined) return false;
        const r = right(ctx);
        if (ctx.error !== undefined) return false;
        return castBoolean(ctx, r, rightNode);
      };
    case 'XOR':
      return (ctx) => {
        const l = left(ctx);
        if (ctx.error !== undefined) return false;
        const r = right(ctx);
        if (ctx.error !== undefined) return false;
        return castBoolean(ctx, l, leftNode) !== castBoolean(ctx, r, rightNode);
      };
    case '=':
    case '!=':
    case '<>':
      return compileEquality(node, left, right);
    default:
      return compileIntegerOperator(node, left, right);
  }
}

/**
 * `=` is ambiguous (defined for String, Integer and Boolean): the right operand's type picks the
 * definition and the left operand is cast to it (section 3.7). A literal on the right is specialised.
 */
function compileEquality(node: BinaryNode, left: Evaluator, right: Evaluator): Evaluator {
  const leftNode = node.left;
  const equal = node.operator === '=';
  if (node.right.kind === 'literal') {
    const literal = node.right.value;
    if (typeof literal === 'string') {
      return (ctx) => {
        const l = left(ctx);
        if (ctx.error !== undefined) return false;
        return ((typeof l === 'string' ? l : toText(l)) === literal) === equal;
      };
    }
    if (typeof literal === 'number') {
      return (ctx) => {
        const l = left(ctx);
        if (ctx.error !== undefined) return false;
        return ((typeof l === 'number' ? l : castInteger(ctx, l, leftNode)) === literal) === equal;
      };
    }
  }
  return (ctx) => {
    const l = left(ctx);
    if (ctx.error !== undefined) return false;
    const r = right(ctx);
    if (ctx.error !== undefined) return false;
    let same: boolean;
    if (typeof r === 'string') same = toText(l) === r;
    else if (typeof r === 'number') same = castInteger(ctx, l, leftNode) === r;
    else same = castBoolean(ctx, l, leftNode) === r;
    return same === equal;
  };
}

function compileIntegerOperator(node: BinaryNode, left: Evaluator, right: Evaluator): Evaluator {
  const leftNode = node.left;
  const rightNode = node.right;
  const operator = node.operator;
  const overflow = evaluationError('math', `${operator} overflows the 32-bit range`, node);
  const byZero = evaluationError('math', operator === '/' ? 'Division by zero' : 'Modulo by zero', node);
  const zero = '+-*/%'.includes(operator) ? 0 : false;
  const integers = (ctx: Context): [number, number] | undefined => {
    const l = left(ctx);
    if (ctx.error !== undefined) return undefined;
    const r = right(ctx);
    if (ctx.error !== undefined) return undefined;
    return [typeof l === 'number' ? l : castInteger(ctx, l, leftNode), typeof r === 'number' ? r : castInteger(ctx, r, rightNode)];
  };
  const clamp = (ctx: Context, value: number): number => {
    if (value > INT_MAX) {
      fail(ctx, overflow);
      return INT_MAX;
    }
    if (value < INT_MIN) {
      fail(ctx, overflow);
      return INT_MIN;
    }
    return value + 0;
  };
  // Comparisons take the operands directly (no tuple) since they sit on the hot path of filters.
  const binaryCompare = (compare: (a: number, b: number) => boolean): Evaluator => {
    return (ctx) => {
      const l = left(ctx);
      if (ctx.error !== undefined) return false;
      const r = right(ctx);
      if (ctx.error !== undefined) return false;
      return compare(typeof l === 'number' ? l : castInteger(ctx, l, leftNode), typeof r === 'number' ? r : castInteger(ctx, r, rightNode));
    };
  };
  switch (operator) {
    case '<':
      return binaryCompare((a, b) => a < b);
    case '<=':
      return binaryCompare((a, b) => a <= b);
    case '>':
      return binaryCompare((a, b) => a > b);
    case '>=':
      return binaryCompare((a, b) => a >= b);
    case '+':
      return (ctx) => {
        const pair = integers(ctx);
        return pair === undefined ? zero : clamp(ctx, pair[0] + pair[1]);
      };
    case '-':
      return (ctx) => {
        const pair = integers(ctx);
        return pair === undefined ? zero : clamp(ctx, pair[0] - pair[1]);
      };
    case '*':
      return (ctx) => {
        const pair = integers(ctx);
        return pair === undefined ? zero : clamp(ctx, pair[0] * pair[1]);
      };
    case '/':
      return (ctx) => {
        const pair = integers(ctx);
        if (pair === undefined) return zero;
        if (pair[1] === 0) {
          fail(ctx, byZero);
          return 0;
        }
        return clamp(ctx, Math.trunc(pair[0] / pair[1]));
      };
    default:
      return (ctx) => {
        const pair = integers(ctx);
        if (pair === undefined) return zero;
        if (pair[1] === 0) {
          fail(ctx, byZero);
          return 0;
        }
        return (pair[0] % pair[1]) + 0;
      };
  }
}

/** A set element cast to one target type ahead of time, or the cast error it would raise. */
type Prepared = { readonly ok: true; readonly value: CesqlValue } | { readonly ok: false; readonly error: EvaluationError };

function prepare(value: CesqlValue, type: CesqlType, node: Expression): Prepared {
  const probe: Context = { event: NO_EVENT, error: undefined };
  const cast = castTo(probe, value, type, node);
  return probe.error === undefined ? { ok: true, value: cast } : { ok: false, error: probe.error };
}

/**
 * `x IN (a, b, ...)`: each element is cast to the type of `x` and compared with `=` semantics
 * (section 3.4.5); the search stops at the first match. A failed element ends it with an error.
 * A set of literals is cast once per type at compile time and looked up in a `Set`.
 */
function compileIn(node: InNode): Evaluator {
  const operand = compileNode(node.operand);
  const negated = node.negated;
  if (node.set.every((element) => element.kind === 'literal')) {
    const byType = new Map<CesqlType, { readonly list: readonly Prepared[]; readonly set: ReadonlySet<CesqlValue> | undefined }>();
    for (const type of ['String', 'Integer', 'Boolean'] as const) {
      const list = node.set.map((element) => prepare((element as { value: CesqlValue }).value, type, element));
      const set = list.every((p) => p.ok) ? new Set(list.map((p) => (p as { value: CesqlValue }).value)) : undefined;
      byType.set(type, { list, set });
    }
    const strings = byType.get('String')!;
    const integers = byType.get('Integer')!;
    const booleans = byType.get('Boolean')!;
    return (ctx) => {
      const value = operand(ctx);
      if (ctx.error !== undefined) return false;
      const prepared = typeof value === 'string' ? strings : typeof value === 'number' ? integers : booleans;
      if (prepared.set !== undefined) return prepared.set.has(value) !== negated;
      for (const element of prepared.list) {
        if (!element.ok) {
          fail(ctx, element.error);
          return false;
        }
        if (element.value === value) return !negated;
      }
      return negated;
    };
  }
  const elements = node.set.map((element) => ({ evaluate: compileNode(element), node: element }));
  return (ctx) => {
    const value = operand(ctx);
    if (ctx.error !== undefined) return false;
    const type: CesqlType = typeof value === 'string' ? 'String' : typeof value === 'number' ? 'Integer' : 'Boolean';
    for (const element of elements) {
      const raw = element.evaluate(ctx);
      if (ctx.error !== undefined) return false;
      const cast = castTo(ctx, raw, type, element.node);
      if (ctx.error !== undefined) return false;
      if (cast === value) return !negated;
    }
    return negated;
  };
}

function compileCall(node: CallNode): Evaluator {
  const overload = resolveFunction(node.name, node.args.length);
  if (overload === undefined) {
    const arities = describeArities(node.name);
    const missing = evaluationError(
      'missingFunction',
      arities === undefined ? `Unknown function ${node.name}` : `No ${node.name} takes ${node.args.length} arguments (it takes ${arities})`,
      node,
    );
    return (ctx) => {
      fail(ctx, missing);
      return false;
    };
  }
  const args = node.args.map(compileNode);
  const argNodes = node.args;
  const types = node.args.map((_, i) => overload.params[i] ?? overload.variadic ?? 'Any');
  const zero = zeroOf(overload.returns);
  const impl = overload.impl;
  return (ctx) => {
    const values: CesqlValue[] = new Array(args.length);
    for (let i = 0; i < args.length; i++) {
      const value = (args[i] as Evaluator)(ctx);
      if (ctx.error !== undefined) return zero;
      values[i] = value;
    }
    for (let i = 0; i < values.length; i++) {
      values[i] = castTo(ctx, values[i] as CesqlValue, types[i] as ParameterType, argNodes[i] as Expression);
    }
    return impl(values, (kind, message) => fail(ctx, evaluationError(kind, message, node)));
  };
}
