import { Client, ServiceError } from '@temporalio/client';
import { Worker, type NativeConnection, type WorkerOptions } from '@temporalio/worker';
import type { Consumer, Kafka } from 'kafkajs';
import { createActivities } from '../activities';
import { claimCommand, claimCommands, recordRejected } from '../activities/command-ledger';
import { createDatabase, type Database } from '../activities/database';
import { createMailer, createSmtpTransport, type Mailer } from '../activities/mailer';
import { isTransient } from '../activities/failures';
import { appliedHandlerFor } from './command-catalog';
import { TemporalCommandRouter } from './command-router';
import { KafkaDeadLetterSink } from '../events/dead-letters';
import { startIngress, type IngressLedger, type IngressMetrics } from './ingress';
import { createKafka, ensureTopics } from '../events/kafka';
import { KafkaEventPublisher } from '../events/publisher';
import type { Topics } from '../events/topics';
import type { Config } from './config';
import { kafkaSettingsFrom, topicPolicyFrom } from './kafka-settings';
import { dataConverterFor } from './payload-codec';
import { connectClient, connectWorker } from './temporal-connection';
import { componentLogger, logLine, type LogLine } from './logger';
import { clientTracingOptions, workerTracingOptions } from './tracing';

/**
 * Wiring of the two processes from the config: the Temporal worker (workflows + activities) and the
 * Kafka ingress (consumer + router). The entry points and the integration tests both use it, so the
 * tests run exactly what production runs.
 */

export interface IngressRuntime {
  kafka: Kafka;
  topics: Topics;
  db: Database;
  client: Client;
  publisher: KafkaEventPublisher;
  deadLetters: KafkaDeadLetterSink;
  router: TemporalCommandRouter;
  /** Starts consuming the inbound topics as consumer group `groupId`. */
  consume(groupId: string, log?: LogLine, metrics?: IngressMetrics): Promise<Consumer>;
  close(): Promise<void>;
}

export async function connectIngress(
  config: Config,
  options: { clientId?: string; temporalClient?: Client } = {},
): Promise<IngressRuntime> {
  const clientId = options.clientId ?? `${config.KAFKA_CLIENT_ID}-ingress`;
  const kafka = createKafka({ ...kafkaSettingsFrom(config), clientId });
  const topics = await ensureTopics(kafka, config.KAFKA_TOPIC_NAMESPACE, topicPolicyFrom(config));
  const publisher = await KafkaEventPublisher.connect(kafka, topics);
  const deadLetters = await KafkaDeadLetterSink.connect(kafka, topics.deadLetters);
  const db = createDatabase(config.DATABASE_URL, config.KAFKA_TOPIC_NAMESPACE);
  // A given client (the time-skipping test server's) is the caller's to close.
  const connection = options.temporalClient ? null : await connectClient(config);
  const client =
    options.temporalClient ??
    new Client({ connection: connection!, namespace: config.TEMPORAL_NAMESPACE, dataConverter: dataConverterFor(config), ...clientTracingOptions() });
  const ledger: IngressLedger = {
    claim: (claim) => claimCommand(db, claim),
    claimAll: (claims) => claimCommands(db, claims),
    async reject({ commandId, commandType, orgId, ledgerId, code, message, details }) {
      await recordRejected(db, { commandId, type: commandType, orgId, ledgerId }, code, message, undefined, details);
    },
  };
  const router = new TemporalCommandRouter({ client, db, taskQueue: config.TEMPORAL_TASK_QUEUE, isTransient: ingressFailureIsTransient, log: logLine(componentLogger('ingress'), 'error') });
  return {
    kafka,
    topics,
    db,
    client,
    publisher,
    deadLetters,
    router,
    consume: (groupId, log, metrics) =>
      startIngress({ kafka, groupId, topics, router, ledger, deadLetters, isTransient: ingressFailureIsTransient, maxEventBytes: config.MAX_EVENT_BYTES, log, metrics }),
    async close() {
      await Promise.allSettled([publisher.disconnect(), deadLetters.disconnect(), db.$disconnect(), connection?.close()]);
    },
  };
}

/** gRPC statuses of Temporal that no retry changes: the request itself is wrong. */
const PERMANENT_GRPC = new Set([3 /* INVALID_ARGUMENT */, 11 /* OUT_OF_RANGE */, 12 /* UNIMPLEMENTED */]);

function ingressFailureIsTransient(error: unknown): boolean {
  if (error instanceof ServiceError) {
    const status = (error.cause as { code?: unknown } | undefined)?.code;
    if (typeof status === 'number' && PERMANENT_GRPC.has(status)) return false;
  }
  return isTransient(error);
}

export interface WorkerRuntime {
  worker: Worker;
  db: Database;
  close(): Promise<void>;
}

export async function createWorker(
  config: Config,
  options: {
    workflowBundle?: WorkerOptions['workflowBundle'];
    connection?: NativeConnection;
    /** How long shutdown() waits for in-flight tasks (the process entry sets it from SHUTDOWN_GRACE_SECONDS). */
    shutdown?: Pick<WorkerOptions, 'shutdownGraceTime' | 'shutdownForceTime'>;
  } = {},
): Promise<WorkerRuntime> {
  const kafka = createKafka({ ...kafkaSettingsFrom(config), clientId: `${config.KAFKA_CLIENT_ID}-worker` });
  const topics = await ensureTopics(kafka, config.KAFKA_TOPIC_NAMESPACE, topicPolicyFrom(config));
  const publisher = await KafkaEventPublisher.connect(kafka, topics);
  const db = createDatabase(config.DATABASE_URL, config.KAFKA_TOPIC_NAMESPACE);
  const mailer: Mailer = createMailer({ db, transport: createSmtpTransport(config.SMTP_URL), from: config.MAIL_FROM });
  // A given connection (the time-skipping test server's) is the caller's to close.
  const connection = options.connection ?? (await connectWorker(config));
  const workflows = options.workflowBundle
    ? { workflowBundle: options.workflowBundle }
    : { workflowsPath: require.resolve('../workflows') };
  const worker = await Worker.create({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    activities: createActivities({ db, publisher, mailer, handlerFor: appliedHandlerFor }),
    dataConverter: dataConverterFor(config),
    maxCachedWorkflows: config.WORKER_MAX_CACHED_WORKFLOWS,
    ...options.shutdown,
    ...workflows,
    // Tracing (off: nothing): a bundle given must then carry the tracing interceptors itself.
    ...workerTracingOptions(Boolean(options.workflowBundle)),
  });
  return {
    worker,
    db,
    async close() {
      mailer.close();
      await Promise.allSettled([publisher.disconnect(), db.$disconnect()]);
      if (!options.connection) await connection.close();
    },
  };
}
