import { Client, Connection } from '@temporalio/client';
import { TemporalCommandRouter } from '../events/command-router';
import { KafkaDeadLetterSink } from '../events/dead-letters';
import { rejectionEvent, startIngress } from '../events/ingress';
import { createKafka, ensureTopics } from '../events/kafka';
import { KafkaEventPublisher } from '../events/publisher';
import { inboundTopics } from '../events/topics';
import { loadConfig } from './config';

async function main(): Promise<void> {
  const config = loadConfig();
  const kafka = createKafka({ brokers: config.KAFKA_BROKERS, clientId: `${config.KAFKA_CLIENT_ID}-ingress` });
  const topics = await ensureTopics(kafka, config.KAFKA_TOPIC_NAMESPACE);
  const publisher = await KafkaEventPublisher.connect(kafka, topics);
  const deadLetters = await KafkaDeadLetterSink.connect(kafka, topics.deadLetters);
  const connection = await Connection.connect({ address: config.TEMPORAL_ADDRESS });
  const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE });
  const router = new TemporalCommandRouter({
    client,
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    onUnsupported: async (command) => {
      const event = rejectionEvent({
        ok: false,
        code: 'UNSUPPORTED_COMMAND',
        reason: `${command.type} is part of the contract but not handled by this version of the backend`,
        commandId: command.commandId,
        commandType: command.type,
      });
      if (event) await publisher.publish([event]);
    },
  });
  const consumer = await startIngress({
    kafka,
    groupId: config.KAFKA_CONSUMER_GROUP,
    topics,
    router,
    publisher,
    deadLetters,
    log: (message) => console.log(`ingress: ${message}`),
  });
  console.log(`ingress: consuming ${inboundTopics.map((name) => topics[name]).join(', ')} from ${config.KAFKA_BROKERS.join(',')}`);

  const shutdown = async () => {
    await consumer.disconnect();
    await Promise.allSettled([publisher.disconnect(), deadLetters.disconnect(), connection.close()]);
  };
  process.once('SIGINT', () => void shutdown());
  process.once('SIGTERM', () => void shutdown());
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error('ingress: failed:', error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
