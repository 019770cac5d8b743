import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes';
import { ALL_SEARCH_ATTRIBUTES } from '../../workflows/search-attributes';
import { Partitioners, type Consumer, type Kafka, type Producer } from 'kafkajs';
import type { Database } from '../../activities/database';
import type { Topics } from '../../events/topics';
import type { Config } from '../../workers/config';
import { dataConverterFor } from '../../workers/payload-codec';
import { startOutboxRelay, type OutboxRelay } from '../../workers/outbox-relay';
import { startAuditSealer, type AuditSealer } from '../../workers/audit-sealer';
import { connectIngress, createWorker } from '../../workers/runtime';
import { startTracing, type Tracing } from '../../workers/tracing';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import { testConfig } from './test-config';

/**
 * The whole backend wired as its processes wire it (worker, Kafka ingress, outbox relay), but in the test
 * process, against the real Temporal server, Kafka broker, PostgreSQL and SMTP sink. Each test file
 * gets its own topic namespace, task queue and consumer group.
 */
export interface TestBackend {
  config: Config;
  topics: Topics;
  kafka: Kafka;
  db: Database;
  client: Client;
  producer: Producer;
  startIngress(): Promise<void>;
  stopIngress(): Promise<void>;
  /** The outbox relay that publishes what the backend writes. */
  relay: OutboxRelay;
  /** The audit sealer that chains the audit entries (it runs beside the relay, as in the relay process). */
  sealer: AuditSealer;
  /** The running ingress consumer (to watch its group membership). */
  ingressConsumer(): Consumer | null;
  stop(): Promise<void>;
}

function workflowBundle() {
  const codePath = process.env.SELFSERVICE_WORKFLOW_BUNDLE;
  if (!codePath) throw new Error('SELFSERVICE_WORKFLOW_BUNDLE is not set: run the suite through jest (globalSetup bundles the workflows)');
  return { code: readFileSync(codePath, 'utf8') };
}

export interface BackendOptions {
  /** Settings that differ from the test defaults (for example an SMTP server that refuses). */
  overrides?: Partial<Record<keyof Config, string>>;
  /** Run against this Temporal server (the time-skipping one) instead of the dev server. */
  temporal?: { client: Client; connection: NativeConnection };
  /**
   * Trace into this exporter (as TRACES_EXPORTER=otlp does into OTLP), with a workflow bundle made with the
   * tracing interceptors (`workflowInterceptorModules: [WORKFLOW_TRACING_MODULE]`).
   */
  tracing?: { exporter: SpanExporter; workflowBundle: { code: string } };
}

export async function startTestBackend(options: BackendOptions = {}): Promise<TestBackend> {
  const config = testConfig(options.overrides);
  // Before any client or worker: they take their interceptors from the tracing that runs.
  const tracing: Tracing | null = options.tracing ? startTracing(config, { serviceName: 'selfservice-test', exporter: options.tracing.exporter }) : null;
  const ingress = await connectIngress(config, { clientId: 'selfservice-test', temporalClient: options.temporal?.client });
  const worker = await createWorker(config, { workflowBundle: options.tracing?.workflowBundle ?? workflowBundle(), connection: options.temporal?.connection });
  const workerRun = worker.worker.run();
  const sealer = startAuditSealer({ databaseUrl: config.DATABASE_URL, log: (message) => console.warn(`audit sealer: ${message}`) });
  const relay = startOutboxRelay({ databaseUrl: config.DATABASE_URL, namespace: config.KAFKA_TOPIC_NAMESPACE, publisher: ingress.publisher, log: (message) => console.warn(`relay: ${message}`), onNotification: sealer.wake });
  const producer = ingress.kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();

  let consumer: Consumer | null = null;
  const backend: TestBackend = {
    config,
    topics: ingress.topics,
    kafka: ingress.kafka,
    db: ingress.db,
    client: ingress.client,
    producer,
    relay,
    sealer,
    async startIngress() {
      consumer = await ingress.consume(config.KAFKA_CONSUMER_GROUP);
    },
    ingressConsumer: () => consumer,
    async stopIngress() {
      await consumer?.disconnect();
      consumer = null;
    },
    async stop() {
      await backend.stopIngress();
      worker.worker.shutdown();
      await workerRun;
      await worker.close();
      await relay.stop();
      await sealer.stop();
      await producer.disconnect();
      await ingress.close();
      await tracing?.shutdown();
    },
  };
  await backend.startIngress();
  return backend;
}

/** Temporal's time-skipping test server (Java, from Maven Central), started through the project's wrapper. */
export async function startTimeSkippingServer(): Promise<TestWorkflowEnvironment> {
  const wrapper = path.resolve(__dirname, '..', '..', '.stack', 'tools', 'temporal-test-server');
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: wrapper } },
    client: { dataConverter: dataConverterFor(testConfig()) },
  });
  // Like services/stack.sh does for the dev server: the workflows set these typed search attributes.
  await env.connection.operatorService.addSearchAttributes({
    namespace: env.namespace ?? 'default',
    searchAttributes: Object.fromEntries(
      ALL_SEARCH_ATTRIBUTES.map((key) => [key.name, encodeSearchAttributeIndexedValueType(key.type)!]),
    ),
  });
  return env;
}
