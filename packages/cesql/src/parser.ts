import type { BinaryOperator, Expression, LogicOperator } from './ast.js';
import { isLogicOperator } from './ast.js';
import { filterError, positionOf } from './errors.js';
import { type Token, type TokenKind, tokenize } from './lexer.js';

export interface ParseOptions {
  /**
   * Refuse `AND`, `OR` and `XOR` mixed without parentheses (`a OR b AND c`). CESQL gives the three
   * the same precedence and groups them left to right (section 3.6), unlike SQL, where AND binds
   * tighter; the reference ANTLR grammar groups them to the right. `compileFilter` sets this, so a
   * filter means the same to every reader and engine. Default false (the spec's grammar exactly).
   */
  readonly requireParenthesesForMixedLogic?: boolean;
}

const INT_MIN = -2147483648;
const INT_MAX = 2147483647;

/**
 * Binding powers, lowest first, after section 3.6 (and `CESQLParser.g4`): logic operators; comparisons;
 * `+ -`; `* / %`; `IN`; `LIKE`; then the prefix operators `NOT` and `-`, whose operand is a primary
 * (or another prefix operator). EXISTS and function calls are primaries. Equal powers group to the left.
 */
const LOGIC_BP = 10;
const COMPARISON_BP = 20;
const ADDITIVE_BP = 30;
const MULTIPLICATIVE_BP = 40;
const IN_BP = 50;
const LIKE_BP = 60;
const PREFIX_BP = 70;

const INFIX: Partial<Record<TokenKind, { operator: BinaryOperator; bp: number }>> = {
  '=': { operator: '=', bp: COMPARISON_BP },
  '!=': { operator: '!=', bp: COMPARISON_BP },
  '<>': { operator: '<>', bp: COMPARISON_BP },
  '<': { operator: '<', bp: COMPARISON_BP },
  '<=': { operator: '<=', bp: COMPARISON_BP },
  '>': { operator: '>', bp: COMPARISON_BP },
  '>=': { operator: '>=', bp: COMPARISON_BP },
  '+': { operator: '+', bp: ADDITIVE_BP },
  '-': { operator: '-', bp: ADDITIVE_BP },
  '*': { operator: '*', bp: MULTIPLICATIVE_BP },
  '/': { operator: '/', bp: MULTIPLICATIVE_BP },
  '%': { operator: '%', bp: MULTIPLICATIVE_BP },
};

/**
 * Parses a CESQL v1 expression into its AST. Throws `SwitchboardError('SB_FILTER_INVALID')` with the
 * position of the first syntax error; never anything else. Does not check function names or arities
 * (`compileFilter` does; `compileExpression` reports them at evaluation, as the spec says).
 */
export function parse(text: string, options: ParseOptions = {}): Expression {
  if (typeof text !== 'string') throw filterError('', 0, 'The expression must be a string');
  return new Parser(text, tokenize(text), options.requireParenthesesForMixedLogic === true).parseRoot();
}

class Parser {
  #pos = 0;
  /** Nodes that were written inside parentheses (for the mixed-logic check). */
  readonly #parenthesized = new WeakSet<Expression>();

  constructor(
    private readonly text: string,
    private readonly tokens: Token[],
    private readonly strictLogic: boolean,
  ) {}

  parseRoot(): Expression {
    if (this.#peek().kind === 'eof') throw this.#error(this.#peek(), 'The expression is empty');
    const expression = this.#expression(0);
    const rest = this.#peek();
    if (rest.kind !== 'eof') throw this.#error(rest, `Unexpected ${describe(rest)} after a complete expression`);
    return expression;
  }

  #peek(offset = 0): Token {
    return this.tokens[Math.min(this.#pos + offset, this.tokens.length - 1)] as Token;
  }

  #next(): Token {
    const token = this.#peek();
    if (token.kind !== 'eof') this.#pos++;
    return token;
  }

  #isKeyword(token: Token, keyword: string): boolean {
    return token.kind === 'keyword' && token.value === keyword;
  }

  #expect(kind: TokenKind, what: string): Token {
    const token = this.#peek();
    if (token.kind !== kind) throw this.#error(token, `Expected ${what}, found ${describe(token)}`);
    return this.#next();
  }

  #error(token: Token, message: string) {
    return filterError(this.text, token.start, message);
  }

  #expression(minBp: number): Expression {
    let left = this.#prefix();
    for (;;) {
      const token = this.#peek();
      if (token.kind === 'keyword') {
        const keyword = token.value;
        if (keyword === 'AND' || keyword === 'OR' || keyword === 'XOR') {
          if (LOGIC_BP <= minBp) break;
          this.#next();
          const right = this.#expression(LOGIC_BP);
          this.#checkMixedLogic(left, keyword, token);
          left = { kind: 'binary', operator: keyword, left, right, start: left.start, end: right.end };
          continue;
        }
        const negated = keyword === 'NOT';
        const operatorToken = negated ? this.#peek(1) : token;
        if (this.#isKeyword(operatorToken, 'LIKE')) {
          if (LIKE_BP <= minBp) break;
          this.#pos += negated ? 2 : 1;
          const pattern = this.#peek();
          if (pattern.kind !== 'string') throw this.#error(pattern, `LIKE takes a string literal pattern, found ${describe(pattern)}`);
          this.#next();
          left = { kind: 'like', operand: left, pattern: pattern.value, negated, start: left.start, end: pattern.end };
          continue;
        }
        if (this.#isKeyword(operatorToken, 'IN')) {
          if (IN_BP <= minBp) break;
          this.#pos += negated ? 2 : 1;
          this.#expect('(', "'(' to open the IN set");
          const set: Expression[] = [this.#expression(0)];
          while (this.#peek().kind === ',') {
            this.#next();
            set.push(this.#expression(0));
          }
          const close = this.#expect(')', "',' or ')' in the IN set");
          left = { kind: 'in', operand: left, set, negated, start: left.start, end: close.end };
          continue;
        }
        if (negated) throw this.#error(operatorToken, `Expected LIKE or IN after NOT, found ${describe(operatorToken)}`);
        break;
      }
      const infix = INFIX[token.kind];
      if (infix === undefined || infix.bp <= minBp) break;
      this.#next();
      const right = this.#expression(infix.bp);
      left = { kind: 'binary', operator: infix.operator, left, right, start: left.start, end: right.end };
    }
    return left;
  }

  #checkMixedLogic(left: Expression, operator: LogicOperator, token: Token): void {
    if (!this.strictLogic) return;
    if (left.kind === 'binary' && isLogicOperator(left.operator) && left.operator !== operator && !this.#parenthesized.has(left)) {
      throw this.#error(
        token,
        `${left.operator} and ${operator} have the same precedence in CESQL and group left to right (unlike SQL); add parentheses to say which is meant`,
      );
    }
  }

  #prefix(): Expression {
    const token = this.#next();
    switch (token.kind) {
      case 'integer':
        return this.#integer(token.value, token.start, token.end, token);
      case 'string':
        return { kind: 'literal', value: token.value, start: token.start, end: token.end };
      case '-':
      case '+': {
        const after = this.#peek();
        if (after.kind === 'integer' && after.start === token.end) {
          this.#next();
          return this.#integer(token.kind === '-' ? `-${after.value}` : after.value, token.start, after.end, token);
        }
        if (token.kind === '+') throw this.#error(token, "Unexpected '+' (CESQL has no unary plus; '+' may only sign an integer literal)");
        const operand = this.#expression(PREFIX_BP);
        return { kind: 'negate', operand, start: token.start, end: operand.end };
      }
      case '(': {
        const inner = this.#expression(0);
        const open = positionOf(this.text, token.start);
        this.#expect(')', `')' to close the '(' at line ${open.line}, column ${open.column}`);
        this.#parenthesized.add(inner);
        return inner;
      }
      case 'identifier':
      case 'function-name': {
        if (this.#peek().kind === '(') return this.#call(token);
        if (token.kind === 'function-name') {
          throw this.#error(token, `'${token.text}' is not an attribute name (attribute names have only letters and digits)`);
        }
        return { kind: 'attribute', name: token.value.toLowerCase(), start: token.start, end: token.end };
      }
      case 'keyword':
        switch (token.value) {
          case 'TRUE':
          case 'FALSE':
            return { kind: 'literal', value: token.value === 'TRUE', start: token.start, end: token.end };
          case 'NOT': {
            const operand = this.#expression(PREFIX_BP);
            return { kind: 'not', operand, start: token.start, end: operand.end };
          }
          case 'EXISTS': {
            const name = this.#peek();
            if (name.kind !== 'identifier' || this.#peek(1).kind === '(') {
              throw this.#error(name, `EXISTS takes an attribute name, found ${describe(name)}`);
            }
            this.#next();
            return { kind: 'exists', name: name.value.toLowerCase(), start: token.start, end: name.end };
          }
          default:
            throw this.#error(token, `Expected an expression, found ${describe(token)}`);
        }
      default:
        throw this.#error(token, `Expected an expression, found ${describe(token)}`);
    }
  }

  #integer(digits: string, start: number, end: number, token: Token): Expression {
    const value = Number(digits);
    if (!(value >= INT_MIN && value <= INT_MAX)) {
      throw this.#error(token, `Integer literal ${digits} is outside the 32-bit range (-2147483648 to 2147483647)`);
    }
    return { kind: 'literal', value: value === 0 ? 0 : value, start, end };
  }

  #call(name: Token): Expression {
    if (!/^[A-Za-z][A-Za-z_]*$/.test(name.text)) {
      throw this.#error(name, `'${name.text}' is not a function name (a letter, then letters and underscores)`);
    }
    this.#expect('(', "'('");
    const args: Expression[] = [];
    if (this.#peek().kind !== ')') {
      args.push(this.#expression(0));
      while (this.#peek().kind === ',') {
        this.#next();
        args.push(this.#expression(0));
      }
    }
    const close = this.#expect(')', `',' or ')' in the arguments of ${name.text.toUpperCase()}`);
    return { kind: 'call', name: name.text.toUpperCase(), args, start: name.start, end: close.end };
  }
}

function describe(token: Token): string {
  switch (token.kind) {
    case 'eof':
      return 'the end of the expression';
    case 'string':
      return `the string ${token.text}`;
    case 'integer':
      return `the number ${token.text}`;
    case 'identifier':
    case 'function-name':
      return `'${token.text}'`;
    case 'keyword':
      return token.value;
    default:
      return `'${token.text}'`;
  }
}
