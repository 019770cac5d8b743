import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../prisma/client/client';

export type Database = PrismaClient;
export type Transaction = Parameters<Parameters<PrismaClient['$transaction']>[0]>[0];

/** One Prisma client per process, talking to PostgreSQL through the pg driver adapter. */
export function createDatabase(databaseUrl: string): Database {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString: databaseUrl }) });
}
