import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { Client } from 'pg';
import { testDatabaseUrl, testOwnerDatabaseUrl } from '../test/support/test-config';

/**
 * The database the backend under test uses: the test database (its server, roles and password), or,
 * with BENCH_DATABASE=<name>, a database of that name on the same server that the bench creates when it
 * is missing (to keep a large run's rows and load away from test runs on the test database).
 */
export interface BenchDatabase {
  /** The application role, as the backend connects. */
  url: string;
  /** The owner role: migrations and the bench's scratch tables. */
  ownerUrl: string;
}

const root = path.resolve(__dirname, '..');

function withDatabase(url: string, name: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${name}`;
  return parsed.toString();
}

/** Creates the database when it is missing and brings it to the current migrations. */
export async function prepareBenchDatabase(name = process.env.BENCH_DATABASE): Promise<BenchDatabase> {
  if (!name) {
    const database = { url: testDatabaseUrl(), ownerUrl: testOwnerDatabaseUrl() };
    migrate(database.ownerUrl);
    return database;
  }
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`BENCH_DATABASE must be a plain PostgreSQL name, not "${name}"`);
  const owner = new Client({ connectionString: testOwnerDatabaseUrl() });
  await owner.connect();
  try {
    const exists = await owner.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rowCount === 0) await owner.query(`CREATE DATABASE ${name}`);
  } finally {
    await owner.end();
  }
  const database = { url: withDatabase(testDatabaseUrl(), name), ownerUrl: withDatabase(testOwnerDatabaseUrl(), name) };
  migrate(database.ownerUrl);
  return database;
}

function migrate(ownerUrl: string): void {
  execFileSync('npx', ['prisma', 'migrate', 'deploy'], { cwd: root, stdio: 'ignore', env: { ...process.env, MIGRATION_DATABASE_URL: ownerUrl } });
}
