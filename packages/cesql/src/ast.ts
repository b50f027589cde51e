/**
 * The parsed form of a CloudEvents SQL (CESQL v1) expression. Engines read it to push a filter
 * down to the broker (see `toSnsFilterPolicy`); the evaluator compiles it to closures.
 *
 * Every node carries `start` and `end`: UTF-16 offsets into the expression text (`end` exclusive).
 * Parentheses leave no node of their own: `(a)` parses to the node of `a`.
 */

/** A CESQL value: String, Integer (a 32-bit signed integer held in a JS number) or Boolean. */
export type CesqlValue = string | number | boolean;

/** The three primitive types of CESQL (section 3.1). */
export type CesqlType = 'String' | 'Integer' | 'Boolean';

interface NodeBase {
  /** Offset of the node's first character in the expression (UTF-16 code units). */
  readonly start: number;
  /** Offset just past the node's last character. */
  readonly end: number;
}

/** `'text'`, `"text"`, `42`, `-7`, `TRUE`, `false`. An integer literal is always in the 32-bit range. */
export interface LiteralNode extends NodeBase {
  readonly kind: 'literal';
  readonly value: CesqlValue;
}

/** A context attribute or extension, by name (lower-cased: identifiers are case-insensitive). */
export interface AttributeNode extends NodeBase {
  readonly kind: 'attribute';
  readonly name: string;
}

/** `NOT x`: Boolean negation. */
export interface NotNode extends NodeBase {
  readonly kind: 'not';
  readonly operand: Expression;
}

/** `-x`: Integer negation (a minus sign written right before digits is part of the literal instead). */
export interface NegateNode extends NodeBase {
  readonly kind: 'negate';
  readonly operand: Expression;
}

export type LogicOperator = 'AND' | 'OR' | 'XOR';
export type ComparisonOperator = '=' | '!=' | '<>' | '<' | '<=' | '>' | '>=';
export type ArithmeticOperator = '+' | '-' | '*' | '/' | '%';
export type BinaryOperator = LogicOperator | ComparisonOperator | ArithmeticOperator;

/** `left OP right` for the logic, comparison and arithmetic operators. `!=` and `<>` are kept as written. */
export interface BinaryNode extends NodeBase {
  readonly kind: 'binary';
  readonly operator: BinaryOperator;
  readonly left: Expression;
  readonly right: Expression;
}

/**
 * `x LIKE 'pattern'` / `x NOT LIKE 'pattern'`. The pattern is the string literal's value: `%` any run
 * of characters, `_` one character, `\%` and `\_` those characters themselves, anything else itself.
 */
export interface LikeNode extends NodeBase {
  readonly kind: 'like';
  readonly operand: Expression;
  readonly pattern: string;
  readonly negated: boolean;
}

/** `EXISTS name`: whether the event has that attribute. */
export interface ExistsNode extends NodeBase {
  readonly kind: 'exists';
  readonly name: string;
}

/** `x IN (a, b, ...)` / `x NOT IN (...)`; the set has at least one element. */
export interface InNode extends NodeBase {
  readonly kind: 'in';
  readonly operand: Expression;
  readonly set: readonly Expression[];
  readonly negated: boolean;
}

/** `NAME(arg, ...)`; the name is upper-cased (function names are case-insensitive). */
export interface CallNode extends NodeBase {
  readonly kind: 'call';
  readonly name: string;
  readonly args: readonly Expression[];
}

/** Any CESQL expression. Switch on `kind`. */
export type Expression = LiteralNode | AttributeNode | NotNode | NegateNode | BinaryNode | LikeNode | ExistsNode | InNode | CallNode;

const LOGIC = new Set<string>(['AND', 'OR', 'XOR']);
const COMPARISON = new Set<string>(['=', '!=', '<>', '<', '<=', '>', '>=']);

export function isLogicOperator(operator: BinaryOperator): operator is LogicOperator {
  return LOGIC.has(operator);
}

export function isComparisonOperator(operator: BinaryOperator): operator is ComparisonOperator {
  return COMPARISON.has(operator);
}
