import path from 'node:path';
import { defineConfig } from 'prisma/config';
import { PrismaPg } from '@prisma/adapter-pg';

// Prisma 6.19 with the JavaScript schema engine: migrations run through the pg driver adapter, so
// no native engine has to be downloaded (see README, "Database migrations").
// Migrations run as the owner role: MIGRATION_DATABASE_URL. The processes connect as the application
// role (DATABASE_URL), which may not alter the schema. A setup that sets only DATABASE_URL (one role
// for everything, as before the roles were split) still migrates with it.
const DEFAULT_MIGRATION_DATABASE_URL = 'postgresql://selfservice:selfservice@127.0.0.1:5433/selfservice';
// The schema's datasource reads DATABASE_URL; give it the local default so offline commands such as
// `prisma generate` work before any environment is set.
process.env.DATABASE_URL ??= DEFAULT_MIGRATION_DATABASE_URL;

export default defineConfig({
  experimental: { adapter: true },
  engine: 'js',
  schema: path.join('prisma', 'schema.prisma'),
  migrations: { path: path.join('prisma', 'migrations') },
  async adapter() {
    return new PrismaPg({ connectionString: process.env.MIGRATION_DATABASE_URL || process.env.DATABASE_URL || DEFAULT_MIGRATION_DATABASE_URL });
  },
});
