/**
 * A reference model of how Amazon SNS applies a subscription filter policy to message attributes
 * (filter policy scope `MessageAttributes`), written from the AWS documentation ("Amazon SNS
 * subscription filter policies", "AND/OR logic", "Key matching", "String value matching", "Numeric
 * value matching", "Filter policy constraints") and checked against its examples in sns.test.ts.
 * Only for tests: it judges the policies `toSnsFilterPolicy` writes.
 *
 * - Every key of the policy must match (AND); `$or` holds sub-policies of which one must match.
 * - A key matches when the message has that attribute and one of the key's conditions matches it;
 *   `{"exists": false}` matches when the attribute is absent.
 * - Strings match String attributes, case-sensitively; `numeric` matches Number attributes;
 *   Binary attributes are ignored.
 */

export interface SnsMessageAttribute {
  readonly Type: 'String' | 'Number' | 'Binary';
  readonly Value: string;
}

export type SnsMessageAttributes = Readonly<Record<string, SnsMessageAttribute>>;

export function snsMatches(policy: unknown, attributes: SnsMessageAttributes): boolean {
  const object = policy as Record<string, unknown>;
  for (const [key, conditions] of Object.entries(object)) {
    if (key === '$or' && Array.isArray(conditions) && conditions.length >= 2 && conditions.every(isPlainObject)) {
      if (!conditions.some((sub) => snsMatches(sub, attributes))) return false;
      continue;
    }
    const attribute = attributes[key];
    const visible = attribute !== undefined && attribute.Type !== 'Binary' ? attribute : undefined;
    if (!(conditions as unknown[]).some((condition) => conditionMatches(condition, visible))) return false;
  }
  return true;
}

function isPlainObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function conditionMatches(condition: unknown, attribute: SnsMessageAttribute | undefined): boolean {
  if (isPlainObject(condition)) {
    const c = condition as Record<string, unknown>;
    if ('exists' in c) return c.exists === (attribute !== undefined);
    if (attribute === undefined) return false;
    const isString = attribute.Type === 'String';
    if ('prefix' in c) return isString && attribute.Value.startsWith(c.prefix as string);
    if ('suffix' in c) return isString && attribute.Value.endsWith(c.suffix as string);
    if ('equals-ignore-case' in c) return isString && attribute.Value.toLowerCase() === (c['equals-ignore-case'] as string).toLowerCase();
    if ('anything-but' in c) {
      const but = c['anything-but'];
      if (isPlainObject(but)) return isString && !attribute.Value.startsWith((but as { prefix: string }).prefix);
      const list = (Array.isArray(but) ? but : [but]) as unknown[];
      return !list.some((v) =>
        typeof v === 'number' ? attribute.Type === 'Number' && Number(attribute.Value) === v : v === attribute.Value,
      );
    }
    if ('numeric' in c) return attribute.Type === 'Number' && numericMatches(c.numeric as unknown[], Number(attribute.Value));
    throw new Error(`model: unknown condition ${JSON.stringify(condition)}`);
  }
  if (attribute === undefined) return false;
  if (typeof condition === 'string') return attribute.Type === 'String' && attribute.Value === condition;
  if (typeof condition === 'number') return attribute.Type === 'Number' && Number(attribute.Value) === condition;
  throw new Error(`model: unknown condition ${JSON.stringify(condition)}`);
}

function numericMatches(ops: readonly unknown[], value: number): boolean {
  for (let i = 0; i < ops.length; i += 2) {
    const op = ops[i];
    const bound = ops[i + 1] as number;
    const ok =
      op === '='
        ? value === bound
        : op === '<'
          ? value < bound
          : op === '<='
            ? value <= bound
            : op === '>'
              ? value > bound
              : op === '>='
                ? value >= bound
                : Number.NaN;
    if (ok !== true) {
      if (Number.isNaN(ok as number)) throw new Error(`model: unknown numeric operator ${String(op)}`);
      return false;
    }
  }
  return true;
}
