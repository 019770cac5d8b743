import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig, type Config } from '../../workers/config';

/** The role the processes connect as; its rights come from prisma/migrations/*_application_role. */
export const APP_DATABASE_ROLE = 'selfservice_app';

/**
 * Tests use their own database on the same server, so the demo org of `npm start` is never touched.
 * This is its owner's URL: the migrations run with it, and tests that must alter tables use it
 * (`ownerDatabase()`). `TEST_MIGRATION_DATABASE_URL` overrides it.
 */
export function testOwnerDatabaseUrl(): string {
  // A TEST_DATABASE_URL alone is one role for everything (set-ups from before the roles were split).
  const given = process.env.TEST_MIGRATION_DATABASE_URL || process.env.TEST_DATABASE_URL;
  if (given) return given;
  const url = new URL(loadConfig().MIGRATION_DATABASE_URL);
  url.pathname = '/selfservice_test';
  return url.toString();
}

/**
 * The test database as the application role, with the local password that services/stack.sh made
 * (`.stack/database-app.password`): what the backend under test connects with, so every test runs
 * with the rights of production. `TEST_DATABASE_URL` overrides it.
 */
export function testDatabaseUrl(): string {
  if (process.env.TEST_DATABASE_URL) return process.env.TEST_DATABASE_URL;
  const stackDir = process.env.STACK_DIR ?? path.resolve(__dirname, '..', '..', '.stack');
  const passwordFile = path.join(stackDir, 'database-app.password');
  let password: string;
  try {
    password = readFileSync(passwordFile, 'utf8').trim();
  } catch {
    throw new Error(`no ${passwordFile}: start PostgreSQL with services/stack.sh (it makes the ${APP_DATABASE_ROLE} role), or set TEST_DATABASE_URL`);
  }
  const url = new URL(testOwnerDatabaseUrl());
  url.username = APP_DATABASE_ROLE;
  url.password = password;
  return url.toString();
}

/**
 * The payload encryption key of the test suite. A test key, committed on purpose: the replay tests
 * decrypt the committed histories with it. Production keys come from the environment.
 */
export const TEST_PAYLOAD_ENCRYPTION_KEY = Buffer.alloc(32, 'selfservice-test-payload-key').toString('base64');

/** A config for one test file: its own topic namespace, task queue and consumer group. */
export function testConfig(overrides: Partial<Record<keyof Config, string>> = {}): Config {
  const run = randomUUID().slice(0, 8);
  return loadConfig({
    ...process.env,
    DATABASE_URL: testDatabaseUrl(),
    KAFKA_TOPIC_NAMESPACE: `test-${run}.`,
    TEMPORAL_TASK_QUEUE: `self-service-test-${run}`,
    KAFKA_CONSUMER_GROUP: `selfservice-ingress-test-${run}`,
    PAYLOAD_ENCRYPTION_KEY: TEST_PAYLOAD_ENCRYPTION_KEY,
    PAYLOAD_ENCRYPTION_KEY_ID: 'test-key',
    ...overrides,
  });
}

export function uniqueId(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}
