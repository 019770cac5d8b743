import { createKafka, ensureTopics } from '../events/kafka';
import { KafkaEventPublisher } from '../events/publisher';
import { loadConfig } from './config';
import { kafkaSettingsFrom, topicPolicyFrom } from './kafka-settings';
import { startOutboxRelay } from './outbox-relay';

/** The outbox relay process: publishes every outbox row to Kafka (workers/outbox-relay.ts). Run one or several. */
async function main(): Promise<void> {
  const config = loadConfig();
  const kafka = createKafka({ ...kafkaSettingsFrom(config), clientId: `${config.KAFKA_CLIENT_ID}-relay` });
  const topics = await ensureTopics(kafka, config.KAFKA_TOPIC_NAMESPACE, topicPolicyFrom(config));
  const publisher = await KafkaEventPublisher.connect(kafka, topics);
  const relay = startOutboxRelay({ databaseUrl: config.DATABASE_URL, namespace: config.KAFKA_TOPIC_NAMESPACE, publisher, log: (message) => console.log(`relay: ${message}`) });
  console.log(`relay: publishing the outbox to ${config.KAFKA_BROKERS.join(',')} (topic namespace "${config.KAFKA_TOPIC_NAMESPACE}")`);

  const shutdown = async () => {
    await relay.stop();
    await publisher.disconnect();
    console.log('relay: stopped');
  };
  process.once('SIGINT', () => void shutdown());
  process.once('SIGTERM', () => void shutdown());
}

main().catch((error: unknown) => {
  console.error('relay: failed:', error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
