import { Kafka, logLevel, type Admin } from 'kafkajs';
import { TopicNames, topicsFor, type Topics } from './topics';

export interface KafkaSettings {
  brokers: string[];
  clientId: string;
}

export function createKafka({ brokers, clientId }: KafkaSettings): Kafka {
  // Retries at most 3 s apart, so that a broker that comes back is used again within seconds.
  return new Kafka({ brokers, clientId, logLevel: logLevel.WARN, connectionTimeout: 3000, retry: { retries: 10, initialRetryTime: 300, maxRetryTime: 3000 } });
}

/** Creates every topic of the contract (3 partitions each) if it does not exist yet. */
export async function ensureTopics(kafka: Kafka, namespace: string, partitions = 3): Promise<Topics> {
  const topics = topicsFor(namespace);
  const admin: Admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = Object.keys(TopicNames)
      .map((name) => topics[name as keyof Topics])
      .filter((topic) => !existing.has(topic));
    if (missing.length > 0) {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((topic) => ({ topic, numPartitions: partitions, replicationFactor: 1 })),
      });
    }
  } finally {
    await admin.disconnect();
  }
  return topics;
}
