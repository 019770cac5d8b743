import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from '../activities';
import { createDatabase, type Database } from '../activities/database';
import { createMailer, createSmtpTransport, type Mailer } from '../activities/mailer';
import { createKafka, ensureTopics } from '../events/kafka';
import { KafkaEventPublisher, type EventPublisher } from '../events/publisher';
import { loadConfig } from './config';

export interface SelfServiceWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  db: Database;
  publisher: EventPublisher;
  mailer: Mailer;
  /** A prebuilt workflow bundle (tests build it once); otherwise the workflows are bundled at start. */
  workflowBundle?: WorkerOptions['workflowBundle'];
}

export function createSelfServiceWorker(options: SelfServiceWorkerOptions): Promise<Worker> {
  const workflows = options.workflowBundle
    ? { workflowBundle: options.workflowBundle }
    : { workflowsPath: require.resolve('../workflows') };
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    activities: createActivities({ db: options.db, publisher: options.publisher, mailer: options.mailer }),
    ...workflows,
  });
}

async function main(): Promise<void> {
  const config = loadConfig();
  const kafka = createKafka({ brokers: config.KAFKA_BROKERS, clientId: `${config.KAFKA_CLIENT_ID}-worker` });
  const topics = await ensureTopics(kafka, config.KAFKA_TOPIC_NAMESPACE);
  const publisher = await KafkaEventPublisher.connect(kafka, topics);
  const db = createDatabase(config.DATABASE_URL);
  const mailer = createMailer({ db, transport: createSmtpTransport(config.SMTP_URL), from: config.MAIL_FROM });
  const connection = await NativeConnection.connect({ address: config.TEMPORAL_ADDRESS });
  const worker = await createSelfServiceWorker({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    db,
    publisher,
    mailer,
  });
  console.log(`worker: polling task queue ${config.TEMPORAL_TASK_QUEUE} on ${config.TEMPORAL_ADDRESS}`);
  // Worker.run() returns after SIGINT/SIGTERM once in-flight tasks have finished.
  await worker.run();
  mailer.close();
  await Promise.allSettled([publisher.disconnect(), db.$disconnect(), connection.close()]);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error('worker: failed:', error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
