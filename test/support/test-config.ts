import { randomUUID } from 'node:crypto';
import { loadConfig, type Config } from '../../workers/config';

/** Tests use their own database on the same server, so the demo org of `npm start` is never touched. */
export function testDatabaseUrl(): string {
  if (process.env.TEST_DATABASE_URL) return process.env.TEST_DATABASE_URL;
  const url = new URL(loadConfig().DATABASE_URL);
  url.pathname = '/selfservice_test';
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
