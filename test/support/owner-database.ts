import { createDatabase, type Database } from '../../activities/database';
import { testOwnerDatabaseUrl } from './test-config';

/**
 * The test database as its owner role, for what the application role (and so `backend.db`) may not
 * do: altering tables to inject faults, inspecting the migrations. Each call opens a connection pool:
 * call `$disconnect()` on it when done (for example in `afterAll`).
 */
export function ownerDatabase(): Database {
  return createDatabase(testOwnerDatabaseUrl());
}
