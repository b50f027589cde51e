import { randomName } from '@switchboard/testkit';
import pg from 'pg';
import { afterAll } from 'vitest';

/** The shared test server. */
export const url = process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A schema of a test file's own (a random name), dropped once the file's tests ran. */
export function testSchema(prefix = 'sbtest'): string {
  const schema = randomName(prefix).replaceAll('-', '_');
  afterAll(async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await client.end();
  });
  return schema;
}
