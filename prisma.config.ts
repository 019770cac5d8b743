import path from 'node:path';
import { defineConfig } from 'prisma/config';
import { PrismaPg } from '@prisma/adapter-pg';

// Prisma 6.19 with the JavaScript schema engine: migrations run through the pg driver adapter, so
// no native engine has to be downloaded (see README, "Database migrations").
const DEFAULT_DATABASE_URL = 'postgresql://selfservice:selfservice@127.0.0.1:5433/selfservice';
// The schema's datasource reads DATABASE_URL; give it the local default so offline commands such as
// `prisma generate` work before any environment is set.
process.env.DATABASE_URL ??= DEFAULT_DATABASE_URL;

export default defineConfig({
  experimental: { adapter: true },
  engine: 'js',
  schema: path.join('prisma', 'schema.prisma'),
  migrations: { path: path.join('prisma', 'migrations') },
  async adapter() {
    return new PrismaPg({ connectionString: process.env.DATABASE_URL ?? DEFAULT_DATABASE_URL });
  },
});
