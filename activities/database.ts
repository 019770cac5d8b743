import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../prisma/client/client';

export type Database = PrismaClient;
export type Transaction = Parameters<Parameters<PrismaClient['$transaction']>[0]>[0];

/**
 * One Prisma client per process, talking to PostgreSQL through the pg driver adapter. Transactions get
 * more time than Prisma's 5 s default: on a loaded machine a command's transaction (a 10,000-member group)
 * must not be cut off half-way, which shows up as a constraint error on its later statements.
 */
export function createDatabase(databaseUrl: string): Database {
  return new PrismaClient({
    adapter: new PrismaPg({ connectionString: databaseUrl }),
    transactionOptions: { maxWait: 10_000, timeout: 15_000 },
  });
}
