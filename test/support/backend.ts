import { readFileSync } from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import type { Consumer, Kafka, Producer } from 'kafkajs';
import { createDatabase, type Database } from '../../activities/database';
import { createMailer, createSmtpTransport } from '../../activities/mailer';
import { TemporalCommandRouter } from '../../events/command-router';
import { KafkaDeadLetterSink } from '../../events/dead-letters';
import { rejectionEvent, startIngress } from '../../events/ingress';
import { createKafka, ensureTopics } from '../../events/kafka';
import { KafkaEventPublisher } from '../../events/publisher';
import type { Topics } from '../../events/topics';
import type { Config } from '../../workers/config';
import { createSelfServiceWorker } from '../../workers/temporal-worker';
import { testConfig } from './test-config';

/**
 * The whole backend wired as the two processes wire it (worker + Kafka ingress), but in the test
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
  stopIngress(): Promise<void>;
  startIngress(): Promise<void>;
  stop(): Promise<void>;
}

function workflowBundle() {
  const codePath = process.env.SELFSERVICE_WORKFLOW_BUNDLE;
  if (!codePath) throw new Error('SELFSERVICE_WORKFLOW_BUNDLE is not set: run the suite through jest (globalSetup bundles the workflows)');
  return { code: readFileSync(codePath, 'utf8') };
}

export async function startTestBackend(): Promise<TestBackend> {
  const config = testConfig();
  const kafka = createKafka({ brokers: config.KAFKA_BROKERS, clientId: 'selfservice-test' });
  const topics = await ensureTopics(kafka, config.KAFKA_TOPIC_NAMESPACE);
  const publisher = await KafkaEventPublisher.connect(kafka, topics);
  const deadLetters = await KafkaDeadLetterSink.connect(kafka, topics.deadLetters);
  const db = createDatabase(config.DATABASE_URL);
  const mailer = createMailer({ db, transport: createSmtpTransport(config.SMTP_URL), from: config.MAIL_FROM });

  const nativeConnection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  const worker: Worker = await createSelfServiceWorker({
    connection: nativeConnection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    db,
    publisher,
    mailer,
    workflowBundle: workflowBundle(),
  });
  const workerRun = worker.run();

  const connection = await Connection.connect({ address: config.TEMPORAL_ADDRESS });
  const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
  const router = new TemporalCommandRouter({
    client,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    onUnsupported: async (command) => {
      const event = rejectionEvent({
        ok: false,
        code: 'UNSUPPORTED_COMMAND',
        reason: `${command.type} is not handled by this version of the backend`,
        commandId: command.commandId,
        commandType: command.type,
      });
      if (event) await publisher.publish([event]);
    },
  });

  let consumer: Consumer | null = null;
  const backend: TestBackend = {
    config,
    topics,
    kafka,
    db,
    client,
    producer: kafka.producer(),
    async startIngress() {
      consumer = await startIngress({ kafka, groupId: config.KAFKA_CONSUMER_GROUP, topics, router, publisher, deadLetters });
    },
    async stopIngress() {
      await consumer?.disconnect();
      consumer = null;
    },
    async stop() {
      await backend.stopIngress();
      worker.shutdown();
      await workerRun;
      mailer.close();
      await Promise.allSettled([
        backend.producer.disconnect(),
        publisher.disconnect(),
        deadLetters.disconnect(),
        db.$disconnect(),
        connection.close(),
      ]);
      await nativeConnection.close();
    },
  };
  await backend.producer.connect();
  await backend.startIngress();
  return backend;
}
