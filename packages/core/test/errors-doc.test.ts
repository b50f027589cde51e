import { readFileSync } from 'node:fs';
import { errorRegistry, problemType } from '@switchboard/core';
import { describe, expect, it } from 'vitest';

// docs/errors.md documents every registry code in one table row:
// | `CODE` | status | `type URI` | retryable yes/no | title | description |
const doc = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');

interface Row {
  readonly code: string;
  readonly status: number;
  readonly type: string;
  readonly retryable: boolean;
  readonly title: string;
  readonly description: string;
}

function rows(markdown: string): Row[] {
  const found: Row[] = [];
  for (const line of markdown.split('\n')) {
    const match = /^\|\s*`(SB_[A-Z0-9_]+)`\s*\|(.*)\|\s*$/.exec(line);
    if (!match) continue;
    const cells = (match[2] as string).split(/(?<!\\)\|/).map((cell) => cell.trim().replaceAll('\\|', '|'));
    const [status, type, retryable, title, description] = cells as [string, string, string, string, string];
    found.push({
      code: match[1] as string,
      status: Number(status),
      type: type.replace(/^`|`$/g, ''),
      retryable: retryable === 'yes',
      title,
      description,
    });
  }
  return found;
}

describe('docs/errors.md', () => {
  const documented = rows(doc);

  it('lists every registry code once, in registry order', () => {
    expect(documented.map((row) => row.code)).toEqual(Object.keys(errorRegistry));
  });

  it('matches the registry for status, type, retryable, title and description', () => {
    for (const row of documented) {
      const entry = errorRegistry[row.code as keyof typeof errorRegistry];
      expect(row, row.code).toEqual({
        code: row.code,
        status: entry.status,
        type: problemType(row.code),
        retryable: entry.retryable,
        title: entry.title,
        description: entry.description,
      });
    }
  });
});
