import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import type { Topics } from '../events/topics';
import { loadConfig, type Config } from '../workers/config';
import { startOutboxRelay } from '../workers/outbox-relay';
import { connectIngress, createWorker } from '../workers/runtime';
import { prepareBenchDatabase } from './bench-database';

/**
 * The backend under test, started in this process exactly as its processes wire it, on a fresh topic
 * namespace, task queue and consumer group, against the test database (or BENCH_DATABASE, see
 * bench-database.ts).
 * Everything that knows how the backend is put together is in this one function, so a change of its
 * processes changes only this file. The processes today: the Temporal worker, the Kafka ingress and the
 * outbox relay (which publishes what the other two write to the outbox).
 */
export interface BenchBackend {
  run: string;
  config: Config;
  /** The database's name (its URLs hold a password: never print them). */
  databaseName: string;
  /** The owner role of the backend's database, for the bench's own scratch tables. */
  ownerDatabaseUrl: string;
  kafka: Kafka;
  topics: Topics;
  /** Where the worker runs, and so what `workerMemory` measures. */
  workerPlacement: 'in-process';
  /** The worker's resident memory: this process's, since the worker runs in it (with the ingress and the bench). */
  workerMemory(): { rss: number; heapUsed: number };
  /** What the worker is doing now: to tell when the backend has gone quiet. */
  workerStatus(): { inFlightActivities: number; inFlightActivations: number; cachedWorkflows: number };
  /** The parts that were started, for the report. */
  parts: string[];
  stop(): Promise<void>;
}

export async function startBenchBackend(): Promise<BenchBackend> {
  const run = randomUUID().slice(0, 8);
  const database = await prepareBenchDatabase();
  const config = loadConfig({
    ...process.env,
    DATABASE_URL: database.url,
    KAFKA_TOPIC_NAMESPACE: `bench-${run}.`,
    TEMPORAL_TASK_QUEUE: `bench-${run}`,
    KAFKA_CONSUMER_GROUP: `bench-${run}`,
  });
  const ingress = await connectIngress(config, { clientId: `bench-${run}` });
  const worker = await createWorker(config);
  const workerRun = worker.worker.run();
  const relay = startOutboxRelay({
    databaseUrl: config.DATABASE_URL,
    namespace: config.KAFKA_TOPIC_NAMESPACE,
    publisher: ingress.publisher,
    log: (message) => console.log(`  relay: ${message}`),
  });
  const consumer = await ingress.consume(config.KAFKA_CONSUMER_GROUP, (message) => console.log(`  ingress: ${message}`));
  return {
    run,
    config,
    databaseName: new URL(database.url).pathname.slice(1),
    ownerDatabaseUrl: database.ownerUrl,
    kafka: ingress.kafka,
    topics: ingress.topics,
    workerPlacement: 'in-process',
    parts: ['temporal worker', 'kafka ingress', 'outbox relay'].map((part) => `${part} (in-process)`),
    workerMemory: () => {
      const { rss, heapUsed } = process.memoryUsage();
      return { rss, heapUsed };
    },
    workerStatus: () => {
      const status = worker.worker.getStatus();
      return {
        inFlightActivities: status.numInFlightActivities,
        inFlightActivations: status.numInFlightWorkflowActivations,
        cachedWorkflows: status.numCachedWorkflows,
      };
    },
    async stop() {
      await consumer.disconnect();
      worker.worker.shutdown();
      await workerRun.catch((error: unknown) => console.error('bench: worker stopped with', error instanceof Error ? error.message : error));
      await worker.close();
      await relay.stop();
      await ingress.close();
    },
  };
}
