export { CHANGE_ID_NAMESPACE, ChangeIds, changeId } from './ids.js';
export { formatLsn, parseLsn } from './lsn.js';
export type { PgoutputMessage, RelationColumn, RelationMessage, ReplicaIdentity, TupleValue } from './pgoutput.js';
export { decodePgoutput, PgoutputProtocolError } from './pgoutput.js';
export type {
  ChangeSetupOptions,
  ChangeSetupProblem,
  ChangeSetupProblemCode,
  ChangeSetupReport,
} from './setup.js';
export { checkPostgresChanges } from './setup.js';
export type { ChangeLag, ChangeSource, ChangeSourceStats, PostgresChangeSourceOptions } from './source.js';
export { createPostgresChangeSource } from './source.js';
export type { SqliteChangeRelay, SqliteChangeRelayOptions, SqliteChangeRelayStats } from './sqlite-relay.js';
export { createSqliteChangeRelay } from './sqlite-relay.js';
export type {
  SqliteChangeInstall,
  SqliteChangeOptions,
  SqliteChangeProblem,
  SqliteChangeProblemCode,
  SqliteChangeReport,
  SqliteDatabase,
} from './sqlite-setup.js';
export { checkSqliteChanges, installSqliteChangeTriggers } from './sqlite-setup.js';
export type { Converter } from './values.js';
export { converterFor } from './values.js';
