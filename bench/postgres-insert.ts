import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { now } from './stats';

/**
 * The floor of a directory sync: the same user rows inserted into PostgreSQL directly, with multi-row
 * INSERTs in batches, into a scratch table shaped like the backend's users (primary key, org + email
 * index) that exists only for this measure.
 */
export async function plainUserInsert(databaseUrl: string, users: readonly { userId: string; orgId: string; email: string }[], batchSize: number): Promise<{ rows: number; ms: number }> {
  const table = `bench_scratch_users_${randomUUID().slice(0, 8)}`;
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(
      `CREATE TABLE ${table} (id text PRIMARY KEY, org_id text NOT NULL, email text NOT NULL, display_name text, status text NOT NULL, admin_roles text[] NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())`,
    );
    await client.query(`CREATE INDEX ${table}_org_email ON ${table} (org_id, email)`);
    const started = now();
    for (let start = 0; start < users.length; start += batchSize) {
      const batch = users.slice(start, start + batchSize);
      const values = batch.map((_, index) => `($${index * 4 + 1}, $${index * 4 + 2}, $${index * 4 + 3}, $${index * 4 + 4}, 'ACTIVE', '{}')`);
      const params = batch.flatMap((user) => [user.userId, user.orgId, user.email, user.userId]);
      await client.query(`INSERT INTO ${table} (id, org_id, email, display_name, status, admin_roles) VALUES ${values.join(', ')}`, params);
    }
    return { rows: users.length, ms: now() - started };
  } finally {
    await client.query(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
    await client.end();
  }
}
