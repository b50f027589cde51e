import type { CesqlValue, ComparisonOperator, Expression } from './ast.js';
import { isComparisonOperator } from './ast.js';
import { parseLikePattern } from './like.js';
import { OPTIONAL_CORE_ATTRIBUTES, parseBoolean, parseInteger, REQUIRED_ATTRIBUTES } from './values.js';

/**
 * Pushing a CESQL filter down to an Amazon SNS subscription filter policy (scope `MessageAttributes`).
 *
 * The translation is **safe**: SNS delivers every message the filter matches (it may deliver more),
 * because a message SNS drops is lost for that subscription. It is **exact** where SNS matches the
 * same messages as CESQL; `exact: false` says SNS lets some through that the filter refuses. Either
 * way the consumer still evaluates the whole expression: exactness then only saves traffic, and
 * SNS applies a policy change up to 15 minutes late, so the consumer is what enforces the filter
 * of the moment. `docs/filters.md` lists the shapes that push down.
 */

export type SnsAttributeType = 'String' | 'Number';

/** How one CloudEvents attribute travels as an SNS message attribute. */
export interface SnsAttribute {
  /** The message attribute name, e.g. `ce-type`. */
  readonly name: string;
  /**
   * `String` (default): sent as an SNS String with the value's CESQL string form (Integer in decimal,
   * Boolean `true`/`false`). `Number`: sent as an SNS Number holding the value cast to Integer
   * whenever CESQL's implicit cast to Integer succeeds (as a String otherwise); use it only for
   * attributes whose values stay within ±10^9, the range SNS compares numbers in.
   */
  readonly type?: SnsAttributeType;
}

export interface SnsPushdownOptions {
  /**
   * The message attribute a CloudEvents attribute travels as, or `undefined` if it does not travel
   * as one (conditions on it are then left to the consumer). Empty strings cannot travel (SNS refuses
   * empty attribute values): an attribute whose value is `''` is taken as absent on the SNS side.
   */
  readonly attribute: (name: string) => SnsAttribute | undefined;
}

/** One condition of a filter policy's value array. */
export type SnsCondition =
  | string
  | { readonly prefix: string }
  | { readonly suffix: string }
  | { readonly 'equals-ignore-case': string }
  | { readonly 'anything-but': readonly string[] | { readonly prefix: string } }
  | { readonly numeric: readonly (string | number)[] }
  | { readonly exists: boolean };

/** An SNS filter policy: attribute name → conditions (one must match), and optionally `$or` of sub-policies. */
export interface SnsFilterPolicy {
  readonly [name: string]: readonly SnsCondition[] | readonly SnsFilterPolicy[];
}

export interface SnsPushdown {
  readonly policy: SnsFilterPolicy;
  /** True when SNS matches exactly the events the expression matches; false when it lets more through. */
  readonly exact: boolean;
}

/** SNS's limits for one policy (filter policy constraints): five keys, 150 combinations, numbers within ±10^9. */
export const SNS_LIMITS = Object.freeze({ keys: 5, combinations: 150, numberMagnitude: 1e9 });

const RESERVED_KEYS = new Set(['$or', 'prefix', 'suffix', 'anything-but', 'numeric', 'exists', 'equals-ignore-case', 'cidr', 'wildcard']);

/**
 * Translates a parsed filter into an SNS filter policy, or `undefined` when no condition of it can be
 * checked by SNS (then the consumer does all the filtering). See the module comment for the guarantee.
 */
export function toSnsFilterPolicy(ast: Expression, options: SnsPushdownOptions): SnsPushdown | undefined {
  const translator = new Translator(options);
  const result = translator.translate(ast, true);
  return render(result.dnf, result.exact);
}

// ---- Internal representation: a disjunction of conjunctions of per-key conditions. ----

type Bound = { readonly value: number; readonly inclusive: boolean };
type Matcher =
  | { readonly t: 'eq'; readonly s: string }
  | { readonly t: 'prefix'; readonly s: string }
  | { readonly t: 'suffix'; readonly s: string }
  | { readonly t: 'ignorecase'; readonly s: string }
  | { readonly t: 'not-in'; readonly values: readonly string[] }
  | { readonly t: 'not-prefix'; readonly s: string }
  | { readonly t: 'range'; readonly lo?: Bound; readonly hi?: Bound }
  | { readonly t: 'exists'; readonly value: boolean };

/** Conditions on one key: SNS matches the key when any of them matches. */
type KeyCondition = readonly Matcher[];
/** Keys that must all match. */
type Conjunction = ReadonlyMap<string, KeyCondition>;
/** Conjunctions of which one must match. `[]` matches nothing; `[empty map]` matches everything. */
type Dnf = readonly Conjunction[];

interface Translation {
  readonly dnf: Dnf;
  readonly exact: boolean;
}

const ALL: Dnf = [new Map()];
const NONE: Dnf = [];
const MAX_CONJUNCTIONS = 256;

const everything = (exact: boolean): Translation => ({ dnf: ALL, exact });
const nothing: Translation = { dnf: NONE, exact: true };

function single(key: string, condition: KeyCondition, exact: boolean): Translation {
  return { dnf: [new Map([[key, condition]])], exact };
}

function isAll(dnf: Dnf): boolean {
  return dnf.some((conjunction) => conjunction.size === 0);
}

function or(a: Dnf, b: Dnf): Dnf {
  if (isAll(a) || isAll(b)) return ALL;
  const combined = [...a, ...b];
  return combined.length > MAX_CONJUNCTIONS ? ALL : combined;
}

/** AND of two DNFs; `exact` is false when two conditions on one key could not be merged (one was kept: a superset). */
function and(a: Dnf, b: Dnf): { dnf: Dnf; exact: boolean } {
  let exact = true;
  const out: Conjunction[] = [];
  for (const x of a) {
    for (const y of b) {
      const merged = new Map(x);
      let empty = false;
      for (const [key, condition] of y) {
        const existing = merged.get(key);
        if (existing === undefined) {
          merged.set(key, condition);
          continue;
        }
        const intersection = intersect(existing, condition);
        if (intersection === 'empty') {
          empty = true;
          break;
        }
        if (intersection === 'unmergeable') exact = false;
        else merged.set(key, intersection);
      }
      if (!empty) out.push(merged);
      if (out.length > MAX_CONJUNCTIONS) return { dnf: ALL, exact: false };
    }
  }
  return { dnf: out, exact };
}

function matcherKey(m: Matcher): string {
  return JSON.stringify(m);
}

function sameCondition(a: KeyCondition, b: KeyCondition): boolean {
  if (a.length !== b.length) return false;
  const keys = new Set(a.map(matcherKey));
  return b.every((m) => keys.has(matcherKey(m)));
}

function union(a: KeyCondition, b: KeyCondition): KeyCondition {
  const seen = new Set(a.map(matcherKey));
  return [...a, ...b.filter((m) => !seen.has(matcherKey(m)))];
}

/** Whether a String value `s` satisfies a matcher (SNS semantics). */
function accepts(m: Matcher, s: string): boolean {
  switch (m.t) {
    case 'eq':
      return s === m.s;
    case 'prefix':
      return s.startsWith(m.s);
    case 'suffix':
      return s.endsWith(m.s);
    case 'ignorecase':
      return s.toLowerCase() === m.s.toLowerCase();
    case 'not-in':
      return !m.values.includes(s);
    case 'not-prefix':
      return !s.startsWith(m.s);
    case 'range':
      return false;
    case 'exists':
      return m.value;
  }
}

function intersectRanges(a: Matcher & { t: 'range' }, b: Matcher & { t: 'range' }): Matcher | undefined {
  const lo = a.lo === undefined ? b.lo : b.lo === undefined ? a.lo : higherLow(a.lo, b.lo);
  const hi = a.hi === undefined ? b.hi : b.hi === undefined ? a.hi : lowerHigh(a.hi, b.hi);
  if (lo !== undefined && hi !== undefined) {
    if (lo.value > hi.value) return undefined;
    if (lo.value === hi.value && !(lo.inclusive && hi.inclusive)) return undefined;
  }
  return { t: 'range', ...(lo === undefined ? {} : { lo }), ...(hi === undefined ? {} : { hi }) };
}

function higherLow(a: Bound, b: Bound): Bound {
  if (a.value !== b.value) return a.value > b.value ? a : b;
  return a.inclusive ? b : a;
}

function lowerHigh(a: Bound, b: Bound): Bound {
  if (a.value !== b.value) return a.value < b.value ? a : b;
  return a.inclusive ? b : a;
}

/** Conditions on one key that must both hold; `unmergeable` when SNS cannot say it in one array. */
function intersect(a: KeyCondition, b: KeyCondition): KeyCondition | 'empty' | 'unmergeable' {
  if (sameCondition(a, b)) return a;
  const onlyEq = (c: KeyCondition) => c.every((m) => m.t === 'eq');
  if (onlyEq(a) || onlyEq(b)) {
    const [values, other] = onlyEq(a) ? [a, b] : [b, a];
    const kept = values.filter((m) => other.some((o) => accepts(o, (m as { s: string }).s)));
    return kept.length === 0 ? 'empty' : kept;
  }
  const onlyRanges = (c: KeyCondition) => c.every((m) => m.t === 'range');
  if (onlyRanges(a) && onlyRanges(b)) {
    const out: Matcher[] = [];
    for (const x of a) {
      for (const y of b) {
        const r = intersectRanges(x as Matcher & { t: 'range' }, y as Matcher & { t: 'range' });
        if (r !== undefined) out.push(r);
      }
    }
    return out.length === 0 ? 'empty' : out;
  }
  const isExists = (c: KeyCondition, value: boolean) => c.length === 1 && c[0]?.t === 'exists' && c[0].value === value;
  if (isExists(a, true) && !b.some((m) => m.t === 'exists')) return b;
  if (isExists(b, true) && !a.some((m) => m.t === 'exists')) return a;
  if ((isExists(a, false) && !b.some((m) => m.t === 'exists')) || (isExists(b, false) && !a.some((m) => m.t === 'exists'))) {
    return 'empty';
  }
  return 'unmergeable';
}

// ---- Translation of the AST. ----

interface AttributeInfo {
  readonly key: string;
  readonly type: SnsAttributeType;
  /** Always present (specversion, id, source, type). */
  readonly required: boolean;
  /** A core attribute: never the empty string when present, and always a String. */
  readonly core: boolean;
}

/** A literal operand, with `-(5)` folded to `-5`. */
function literalOf(node: Expression): CesqlValue | undefined {
  if (node.kind === 'literal') return node.value;
  if (node.kind === 'negate' && node.operand.kind === 'literal' && typeof node.operand.value === 'number') {
    const value = -node.operand.value;
    return value > 2147483647 ? undefined : value + 0;
  }
  return undefined;
}

/**
 * Whether a String literal means the same compared to any attribute value as it does compared as
 * text: not an integer written another way (`05`, `+5`) nor a Boolean in another case (`TRUE`).
 */
function canonical(literal: string): boolean {
  const n = parseInteger(literal);
  if (n !== undefined && String(n) !== literal) return false;
  const b = parseBoolean(literal);
  if (b !== undefined && literal !== String(b)) return false;
  return true;
}

function literalClass(literal: string): 'integer' | 'boolean' | 'text' {
  return parseInteger(literal) !== undefined ? 'integer' : parseBoolean(literal) !== undefined ? 'boolean' : 'text';
}

const FLIP: Record<'<' | '<=' | '>' | '>=', '<' | '<=' | '>' | '>='> = { '<': '>', '<=': '>=', '>': '<', '>=': '<=' };

function rangeFor(operator: '=' | '<' | '<=' | '>' | '>=', n: number): Matcher {
  switch (operator) {
    case '=':
      return { t: 'range', lo: { value: n, inclusive: true }, hi: { value: n, inclusive: true } };
    case '<':
      return { t: 'range', hi: { value: n, inclusive: false } };
    case '<=':
      return { t: 'range', hi: { value: n, inclusive: true } };
    case '>':
      return { t: 'range', lo: { value: n, inclusive: false } };
    case '>=':
      return { t: 'range', lo: { value: n, inclusive: true } };
  }
}

/** Numbers other than the given ones, as ranges between them. */
function rangesExcept(values: readonly number[]): Matcher[] {
  const sorted = [...new Set(values)].sort((x, y) => x - y);
  const out: Matcher[] = [];
  let lo: Bound | undefined;
  for (const v of sorted) {
    out.push({ t: 'range', ...(lo === undefined ? {} : { lo }), hi: { value: v, inclusive: false } });
    lo = { value: v, inclusive: false };
  }
  out.push({ t: 'range', ...(lo === undefined ? {} : { lo }) });
  return out;
}

class Translator {
  readonly #info = new Map<string, AttributeInfo | undefined>();

  constructor(private readonly options: SnsPushdownOptions) {}

  #attribute(name: string): AttributeInfo | undefined {
    if (this.#info.has(name)) return this.#info.get(name);
    const mapped = this.options.attribute(name);
    const info =
      mapped === undefined || typeof mapped.name !== 'string' || mapped.name === '' || RESERVED_KEYS.has(mapped.name)
        ? undefined
        : {
            key: mapped.name,
            type: mapped.type ?? 'String',
            required: REQUIRED_ATTRIBUTES.has(name),
            core: REQUIRED_ATTRIBUTES.has(name) || OPTIONAL_CORE_ATTRIBUTES.has(name),
          };
    this.#info.set(name, info);
    return info;
  }

  /**
   * A superset (in SNS terms) of the events on which `node` evaluates, without error, to a value that
   * is (or casts to) the Boolean `polarity`.
   */
  translate(node: Expression, polarity: boolean): Translation {
    switch (node.kind) {
      case 'literal':
        if (typeof node.value === 'boolean') return node.value === polarity ? everything(true) : nothing;
        return everything(false);
      case 'not':
        return this.translate(node.operand, !polarity);
      case 'exists':
        return this.#exists(node.name, polarity);
      case 'like':
        return this.#like(node.operand, node.pattern, node.negated ? !polarity : polarity);
      case 'in':
        return this.#in(node.operand, node.set, node.negated ? !polarity : polarity);
      case 'binary': {
        const { operator, left, right } = node;
        if (operator === 'AND' || operator === 'OR' || operator === 'XOR') return this.#logic(operator, left, right, polarity);
        if (isComparisonOperator(operator)) return this.#comparison(operator, left, right, polarity);
        return everything(false);
      }
      default:
        // Attributes, functions and arithmetic are not conditions SNS can check.
        return everything(false);
    }
  }

  #logic(operator: 'AND' | 'OR' | 'XOR', left: Expression, right: Expression, polarity: boolean): Translation {
    const lt = () => this.translate(left, true);
    const lf = () => this.translate(left, false);
    const rt = () => this.translate(right, true);
    const rf = () => this.translate(right, false);
    const conj = (a: Translation, b: Translation): Translation => {
      const merged = and(a.dnf, b.dnf);
      return { dnf: merged.dnf, exact: a.exact && b.exact && merged.exact };
    };
    const disj = (a: Translation, b: Translation): Translation => ({ dnf: or(a.dnf, b.dnf), exact: a.exact && b.exact });
    if (operator === 'AND') {
      // true: both true. false: left false, or left true and right false (right is not evaluated after false).
      return polarity ? conj(lt(), rt()) : disj(lf(), conj(lt(), rf()));
    }
    if (operator === 'OR') {
      if (!polarity) return conj(lf(), rf());
      // true: left true, or left false (without error) and right true. SNS cannot tell "left false"
      // from "left failed", so this is left-true OR right-true: exact when the left cannot fail where
      // the right is true.
      const result = disj(lt(), rt());
      return { dnf: result.dnf, exact: result.exact && this.#cannotFailWhere(left, right) };
    }
    return polarity ? disj(conj(lt(), rf()), conj(lf(), rt())) : disj(conj(lt(), rt()), conj(lf(), rf()));
  }

  /** Whether `left` always evaluates without error on events where `right` is true. */
  #cannotFailWhere(left: Expression, right: Expression): boolean {
    if (!castSafe(left)) return false;
    const needed = attributesOf(left);
    const guaranteed = presentWhenTrue(right);
    for (const name of needed) if (!REQUIRED_ATTRIBUTES.has(name) && !guaranteed.has(name)) return false;
    return true;
  }

  #exists(name: string, polarity: boolean): Translation {
    if (REQUIRED_ATTRIBUTES.has(name)) return polarity ? everything(true) : nothing;
    const info = this.#attribute(name);
    if (info === undefined) return everything(false);
    if (info.core) return single(info.key, [{ t: 'exists', value: polarity }], true);
    // An extension holding '' exists for CESQL but cannot travel: SNS sees it absent.
    return polarity ? everything(false) : single(info.key, [{ t: 'exists', value: false }], false);
  }

  /** The events where the attribute is present with a value other than the ones `condition` names. */
  #otherwise(info: AttributeInfo, condition: KeyCondition, exact: boolean): Translation {
    if (info.core) return single(info.key, condition, exact);
    // An extension may hold '' (absent for SNS): let absent ones through as well.
    return single(info.key, [...condition, { t: 'exists', value: false }], false);
  }

  #comparison(operator: ComparisonOperator, left: Expression, right: Expression, polarity: boolean): Translation {
    const rightLiteral = left.kind === 'attribute' ? literalOf(right) : undefined;
    const leftLiteral = right.kind === 'attribute' ? literalOf(left) : undefined;
    const reversed = rightLiteral === undefined;
    const attributeNode = reversed ? right : left;
    const literal = reversed ? leftLiteral : rightLiteral;
    if (attributeNode.kind !== 'attribute' || literal === undefined) return everything(false);
    const name = attributeNode.name;
    const info = this.#attribute(name);
    if (info === undefined) return everything(false);
    if (operator === '=' || operator === '!=' || operator === '<>') {
      const truth = operator === '=' ? polarity : !polarity;
      return info.type === 'Number'
        ? this.#numberEquality(info, literal, reversed, truth)
        : this.#stringEquality(info, literal, reversed, truth);
    }
    // < <= > >= cast both sides to Integer: only a Number attribute and an integer literal push down.
    const n = typeof literal === 'number' ? literal : typeof literal === 'string' ? parseInteger(literal) : undefined;
    if (info.type !== 'Number' || n === undefined || Math.abs(n) > SNS_LIMITS.numberMagnitude) return everything(false);
    const op = (reversed ? FLIP[operator as '<'] : operator) as '<' | '<=' | '>' | '>=';
    const complement = { '<': '>=', '<=': '>', '>': '<=', '>=': '<' } as const;
    return single(info.key, [rangeFor(polarity ? op : complement[op], n)], true);
  }

  #stringEquality(info: AttributeInfo, literal: CesqlValue, reversed: boolean, truth: boolean): Translation {
    let text: string;
    if (typeof literal === 'string') {
      // `attr = 'x'` compares text; `'x' = attr` casts 'x' to the attribute's type, which only core
      // attributes (always Strings) or a canonical literal make the same.
      if (reversed && !info.core && !canonical(literal)) return everything(false);
      text = literal;
    } else if (typeof literal === 'boolean') {
      if (!reversed) {
        // `attr = TRUE` casts the attribute to Boolean: 'true' in any case.
        return single(info.key, [{ t: 'ignorecase', s: String(truth ? literal : !literal) }], true);
      }
      if (!info.core) return everything(false);
      text = String(literal);
    } else {
      // `attr = 5` casts the attribute to Integer ('05' matches too): not a String condition.
      if (!reversed) return everything(false);
      text = String(literal);
    }
    if (text === '') {
      // Core attributes are never empty; an extension holding '' is absent for SNS.
      if (truth) return info.core ? nothing : everything(false);
      return info.required ? everything(true) : single(info.key, [{ t: 'exists', value: true }], !reversed || info.core);
    }
    return truth ? single(info.key, [{ t: 'eq', s: text }], true) : this.#otherwise(info, [{ t: 'not-in', values: [text] }], true);
  }

  #numberEquality(info: AttributeInfo, literal: CesqlValue, reversed: boolean, truth: boolean): Translation {
    if (typeof literal !== 'number' || Math.abs(literal) > SNS_LIMITS.numberMagnitude) return everything(false);
    if (!reversed) return single(info.key, truth ? [rangeFor('=', literal)] : rangesExcept([literal]), true);
    // `5 = attr` compares as the attribute's own type: a String 'x' is then unequal to 5, and SNS
    // cannot match String values of a Number key, so only the true side narrows (a String '05' is
    // unequal to 5 but travels as the Number 5: a superset).
    return truth ? single(info.key, [rangeFor('=', literal)], false) : everything(false);
  }

  #like(operand: Expression, pattern: string, polarity: boolean): Translation {
    if (operand.kind !== 'attribute') return everything(false);
    const info = this.#attribute(operand.name);
    if (info === undefined || info.type !== 'String') return everything(false);
    const { segments, hasAnyOne } = parseLikePattern(pattern);
    const literals = hasAnyOne ? undefined : segments.map((segment) => segment.join(''));
    if (literals !== undefined && literals.length === 1) {
      return this.#stringEquality(info, literals[0] as string, false, polarity);
    }
    if (literals !== undefined && literals.length === 2) {
      const [first, last] = literals as [string, string];
      if (first === '' && last === '') {
        // LIKE '%': any present value.
        if (!polarity) return nothing;
        if (info.required) return everything(true);
        return info.core ? single(info.key, [{ t: 'exists', value: true }], true) : everything(false);
      }
      if (last === '') {
        return polarity
          ? single(info.key, [{ t: 'prefix', s: first }], true)
          : this.#otherwise(info, [{ t: 'not-prefix', s: first }], true);
      }
      if (first === '' && polarity) return single(info.key, [{ t: 'suffix', s: last }], true);
    }
    if (!polarity) return info.required || !info.core ? everything(false) : single(info.key, [{ t: 'exists', value: true }], false);
    // Other patterns: the literal characters before the first wildcard, or after the last, still narrow it.
    const firstSegment = segments[0] ?? [];
    const lastSegment = segments[segments.length - 1] ?? [];
    const lead = takeWhileLiteral(firstSegment).join('');
    if (lead !== '') return single(info.key, [{ t: 'prefix', s: lead }], false);
    const tail = takeWhileLiteral([...lastSegment].reverse())
      .reverse()
      .join('');
    if (segments.length > 1 && tail !== '') return single(info.key, [{ t: 'suffix', s: tail }], false);
    return info.core && !info.required ? single(info.key, [{ t: 'exists', value: true }], false) : everything(false);
  }

  #in(operand: Expression, set: readonly Expression[], polarity: boolean): Translation {
    if (operand.kind !== 'attribute') return everything(false);
    const info = this.#attribute(operand.name);
    if (info === undefined) return everything(false);
    const literals = set.map(literalOf);
    if (literals.some((l) => l === undefined)) return everything(false);
    const values = literals as CesqlValue[];
    if (info.type === 'Number') {
      if (!values.every((v) => typeof v === 'number' && Math.abs(v) <= SNS_LIMITS.numberMagnitude)) return everything(false);
      const numbers = values as number[];
      // IN casts the set to the attribute's own type: as for `5 = attr`, only the true side narrows.
      return polarity
        ? single(
            info.key,
            numbers.map((n) => rangeFor('=', n)),
            false,
          )
        : everything(false);
    }
    const texts: string[] = [];
    for (const value of values) {
      if (typeof value === 'number') texts.push(String(value));
      else if (typeof value === 'boolean') {
        // `n IN (TRUE)` is true for the Integer 1: only core attributes (Strings) compare it as 'true'.
        if (!info.core) return everything(false);
        texts.push(String(value));
      } else {
        if (!info.core && !canonical(value)) return everything(false);
        texts.push(value);
      }
    }
    const nonEmpty = texts.filter((t) => t !== '');
    if (nonEmpty.length < texts.length && !info.core) {
      // '' is in the set: an extension holding '' is in it, but SNS sees it absent.
      if (polarity) return everything(false);
      const condition: Matcher = nonEmpty.length === 0 ? { t: 'exists', value: true } : { t: 'not-in', values: unique(nonEmpty) };
      return single(info.key, [condition], false);
    }
    // Cast errors stop IN at the failing element: with one class of literal none can fail before a match.
    const classes = new Set(nonEmpty.map(literalClass));
    const exact = info.core || classes.size <= 1;
    if (polarity)
      return nonEmpty.length === 0
        ? nothing
        : single(
            info.key,
            unique(nonEmpty).map((s) => ({ t: 'eq', s })),
            exact,
          );
    if (nonEmpty.length === 0) return info.required ? everything(true) : single(info.key, [{ t: 'exists', value: true }], info.core);
    return this.#otherwise(info, [{ t: 'not-in', values: unique(nonEmpty) }], exact);
  }
}

function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}

/** The characters at the start of a segment, up to its first `_`. */
function takeWhileLiteral(segment: readonly (string | null)[]): string[] {
  const out: string[] = [];
  for (const item of segment) {
    if (item === null) break;
    out.push(item);
  }
  return out;
}

/** Attribute names an expression reads. */
function attributesOf(node: Expression, into = new Set<string>()): Set<string> {
  switch (node.kind) {
    case 'attribute':
      into.add(node.name);
      break;
    case 'not':
    case 'negate':
    case 'like':
      attributesOf(node.operand, into);
      break;
    case 'in':
      attributesOf(node.operand, into);
      for (const e of node.set) attributesOf(e, into);
      break;
    case 'binary':
      attributesOf(node.left, into);
      attributesOf(node.right, into);
      break;
    case 'call':
      for (const a of node.args) attributesOf(a, into);
      break;
    default:
      break;
  }
  return into;
}

/** Attributes that are present whenever `node` is true. */
function presentWhenTrue(node: Expression): Set<string> {
  switch (node.kind) {
    case 'exists':
      return new Set([node.name]);
    case 'like':
    case 'in':
      return node.operand.kind === 'attribute' ? new Set([node.operand.name]) : new Set();
    case 'binary': {
      if (node.operator === 'AND') return new Set([...presentWhenTrue(node.left), ...presentWhenTrue(node.right)]);
      if (node.operator === 'OR') {
        const right = presentWhenTrue(node.right);
        return new Set([...presentWhenTrue(node.left)].filter((name) => right.has(name)));
      }
      // A comparison (or XOR, arithmetic) is true only when every attribute it reads is present.
      return attributesOf(node);
    }
    case 'not':
      return node.operand.kind === 'exists' ? new Set() : attributesOf(node.operand);
    default:
      return new Set();
  }
}

/** Whether an expression evaluates without error whenever the attributes it reads are present. */
function castSafe(node: Expression): boolean {
  switch (node.kind) {
    case 'literal':
    case 'exists':
      return true;
    case 'like':
      return node.operand.kind === 'attribute';
    case 'in':
      // Core attributes are Strings: every element casts to String.
      return node.operand.kind === 'attribute' && REQUIRED_OR_CORE(node.operand.name) && node.set.every((e) => e.kind === 'literal');
    case 'not':
      return castSafe(node.operand);
    case 'binary':
      if (node.operator === 'AND' || node.operator === 'OR' || node.operator === 'XOR') return castSafe(node.left) && castSafe(node.right);
      if (node.operator === '=' || node.operator === '!=' || node.operator === '<>') {
        // Comparing to a String literal casts the attribute to String, which never fails.
        return (
          (node.left.kind === 'attribute' && node.right.kind === 'literal' && typeof node.right.value === 'string') ||
          (node.right.kind === 'attribute' && REQUIRED_OR_CORE(node.right.name) && node.left.kind === 'literal')
        );
      }
      return false;
    default:
      return false;
  }
}

function REQUIRED_OR_CORE(name: string): boolean {
  return REQUIRED_ATTRIBUTES.has(name) || OPTIONAL_CORE_ATTRIBUTES.has(name);
}

// ---- Rendering to SNS JSON. ----

function toCondition(m: Matcher): SnsCondition {
  switch (m.t) {
    case 'eq':
      return m.s;
    case 'prefix':
      return { prefix: m.s };
    case 'suffix':
      return { suffix: m.s };
    case 'ignorecase':
      return { 'equals-ignore-case': m.s };
    case 'not-in':
      return { 'anything-but': [...m.values] };
    case 'not-prefix':
      return { 'anything-but': { prefix: m.s } };
    case 'exists':
      return { exists: m.value };
    case 'range': {
      if (m.lo !== undefined && m.hi !== undefined && m.lo.value === m.hi.value) return { numeric: ['=', m.lo.value] };
      const ops: (string | number)[] = [];
      if (m.lo !== undefined) ops.push(m.lo.inclusive ? '>=' : '>', m.lo.value);
      if (m.hi !== undefined) ops.push(m.hi.inclusive ? '<=' : '<', m.hi.value);
      // An unbounded range (every number) has no numeric form: exists does it for a Number key.
      return ops.length === 0 ? { exists: true } : { numeric: ops };
    }
  }
}

function values(condition: KeyCondition): number {
  return condition.reduce((sum, m) => sum + (m.t === 'not-in' ? m.values.length : 1), 0);
}

/** Merges conjunctions that differ on one key only (`a = 1 OR a = 2` → one key, two values). */
function mergeSiblings(dnf: Dnf): Conjunction[] {
  const list = [...dnf];
  let changed = true;
  while (changed) {
    changed = false;
    outer: for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        const a = list[i] as Conjunction;
        const b = list[j] as Conjunction;
        if (a.size !== b.size) continue;
        let differing: string | undefined;
        let ok = true;
        for (const [key, condition] of a) {
          const other = b.get(key);
          if (other === undefined) {
            ok = false;
            break;
          }
          if (!sameCondition(condition, other)) {
            if (differing !== undefined) {
              ok = false;
              break;
            }
            differing = key;
          }
        }
        if (!ok) continue;
        const merged = new Map(a);
        if (differing !== undefined) merged.set(differing, union(a.get(differing) as KeyCondition, b.get(differing) as KeyCondition));
        list[i] = merged;
        list.splice(j, 1);
        changed = true;
        break outer;
      }
    }
  }
  return list;
}

function render(dnf: Dnf, exact: boolean): SnsPushdown | undefined {
  if (dnf.length === 0 || isAll(dnf)) return undefined;
  const conjunctions = mergeSiblings(dnf);
  const first = conjunctions[0] as Conjunction;
  const common = new Map<string, KeyCondition>();
  for (const [key, condition] of first) {
    if (conjunctions.every((c) => c.has(key) && sameCondition(c.get(key) as KeyCondition, condition))) common.set(key, condition);
  }
  const rests = conjunctions.map((c) => new Map([...c].filter(([key]) => !common.has(key))));
  const full = build(common, conjunctions.length === 1 || rests.some((r) => r.size === 0) ? [] : rests);
  if (full !== undefined) return { policy: full, exact };
  // Over SNS's limits: the part every branch shares still narrows the stream.
  const shared = common.size > 0 ? build(common, []) : undefined;
  return shared === undefined ? undefined : { policy: shared, exact: false };
}

function build(common: Conjunction, branches: readonly Conjunction[]): SnsFilterPolicy | undefined {
  const keys = common.size + branches.reduce((sum, b) => sum + b.size, 0);
  const base = [...common.values()].reduce((product, c) => product * values(c), 1);
  const combinations =
    branches.length === 0 ? base : branches.reduce((sum, b) => sum + base * [...b.values()].reduce((p, c) => p * values(c), 1), 0);
  if (keys > SNS_LIMITS.keys || combinations > SNS_LIMITS.combinations) return undefined;
  const object = (conjunction: Conjunction): Record<string, SnsCondition[]> =>
    Object.fromEntries([...conjunction].map(([key, condition]) => [key, condition.map(toCondition)]));
  const policy: Record<string, SnsCondition[] | SnsFilterPolicy[]> = object(common);
  if (branches.length > 0) policy.$or = branches.map(object);
  return policy;
}
