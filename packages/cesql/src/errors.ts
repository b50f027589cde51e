import { SwitchboardError } from '@switchboard/core';

/**
 * The error types of CESQL (section 3.3), spelled as the official TCK spells them. `parse` errors
 * are thrown when an expression is compiled; the others are returned by evaluation.
 */
export type CesqlErrorKind = 'parse' | 'math' | 'cast' | 'missingAttribute' | 'missingFunction' | 'functionEvaluation' | 'generic';

/** An error found while evaluating an expression. Plain data: no stack is captured on the hot path. */
export interface EvaluationError {
  readonly kind: Exclude<CesqlErrorKind, 'parse'>;
  readonly message: string;
  /** Offsets of the sub-expression that raised it (see the AST's `start`/`end`). */
  readonly start: number;
  readonly end: number;
}

/** Where in the expression text a compile-time error is: `offset` 0-based, `line` and `column` 1-based (UTF-16 units). */
export interface SourcePosition {
  readonly offset: number;
  readonly line: number;
  readonly column: number;
}

/** The position of `offset` in `text`; lines end at `\n` (a `\r\n` pair counts as one line end). */
export function positionOf(text: string, offset: number): SourcePosition {
  let line = 1;
  let lineStart = 0;
  const stop = Math.min(offset, text.length);
  for (let i = 0; i < stop; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { offset, line, column: offset - lineStart + 1 };
}

/**
 * The one error compiling an expression throws: `SB_FILTER_INVALID`, with `offset`, `line`, `column`
 * and `reason` (`parse`, or `missingFunction` for an unknown function or a wrong number of arguments)
 * in its `extensions`, and the position in its message.
 */
export function filterError(
  text: string,
  offset: number,
  message: string,
  reason: 'parse' | 'missingFunction' = 'parse',
): SwitchboardError {
  const position = positionOf(text, offset);
  return new SwitchboardError('SB_FILTER_INVALID', {
    detail: `${message} (line ${position.line}, column ${position.column})`,
    extensions: { ...position, reason },
  });
}

export function evaluationError(kind: EvaluationError['kind'], message: string, node: { start: number; end: number }): EvaluationError {
  return Object.freeze({ kind, message, start: node.start, end: node.end });
}
