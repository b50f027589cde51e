/**
 * `@switchboard/cesql`: CloudEvents SQL (CESQL v1) expressions for content-based subscription filters.
 *
 * - `compileFilter(text)` parses once (throwing `SB_FILTER_INVALID` with the position) and returns
 *   `matches(event)` / `evaluate(event)`; `compileExpression(text)` is the spec-exact form the TCK runs.
 * - `parse(text)` gives the typed AST; `formatExpression(ast)` prints it back.
 * - `toSnsFilterPolicy(ast, options)` pushes what SNS can check down to a subscription filter policy.
 */
export type {
  ArithmeticOperator,
  AttributeNode,
  BinaryNode,
  BinaryOperator,
  CallNode,
  CesqlType,
  CesqlValue,
  ComparisonOperator,
  ExistsNode,
  Expression,
  InNode,
  LikeNode,
  LiteralNode,
  LogicOperator,
  NegateNode,
  NotNode,
} from './ast.js';
export { isComparisonOperator, isLogicOperator } from './ast.js';
export { type CompiledFilter, compileExpression, compileFilter, type EvaluationResult } from './compile.js';
export type { CesqlErrorKind, EvaluationError, SourcePosition } from './errors.js';
export { formatExpression } from './format.js';
export { BUILTIN_FUNCTIONS, type FunctionOverload, type ParameterType } from './functions.js';
export { type ParseOptions, parse } from './parser.js';
export {
  SNS_LIMITS,
  type SnsAttribute,
  type SnsAttributeType,
  type SnsCondition,
  type SnsFilterPolicy,
  type SnsPushdown,
  type SnsPushdownOptions,
  toSnsFilterPolicy,
} from './sns.js';
