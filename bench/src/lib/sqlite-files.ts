import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** How long the bare SQLite consumer sleeps when it found nothing: a tight poll, the best case for latency. */
export const RAW_SQLITE_IDLE_POLL_MS = 1;

/** A fresh database file in the temporary directory. */
export function benchDatabasePath(scope: string): string {
  return join(tmpdir(), `switchboard-bench-${scope}.db`);
}

/** Removes a database file with its WAL and shared-memory files. */
export async function removeDatabase(path: string): Promise<void> {
  await Promise.all(['', '-wal', '-shm'].map((suffix) => rm(`${path}${suffix}`, { force: true })));
}
