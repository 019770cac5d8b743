import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../prisma/client/client';

export type Database = PrismaClient;
export type Transaction = Parameters<Parameters<PrismaClient['$transaction']>[0]>[0];

/**
 * One Prisma client per process, talking to PostgreSQL through the pg driver adapter. Transactions get
 * more time than Prisma's 5 s default: on a loaded machine a command's transaction (a 10,000-member group)
 * must not be cut off half-way, which shows up as a constraint error on its later statements. The
 * connections carry the deployment's Kafka topic namespace, which the outbox rows they write record.
 */
export function createDatabase(databaseUrl: string, topicNamespace = ''): Database {
  return new PrismaClient({
    // Outbox rows take the deployment's topic namespace from this setting (a column default).
    adapter: new PrismaPg({ connectionString: databaseUrl, options: `-c selfservice.topic_namespace=${topicNamespace}` }),
    transactionOptions: { maxWait: 10_000, timeout: 15_000 },
    // Errors name the field and the problem, never the query's arguments (names, emails): they reach log lines.
    errorFormat: 'minimal',
  });
}
