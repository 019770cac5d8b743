import { inboundTopics } from '../events/topics';
import { loadConfig } from './config';
import { connectIngress } from './runtime';

/** The Kafka ingress process: validates inbound commands and hands them to Temporal. */
async function main(): Promise<void> {
  const config = loadConfig();
  const runtime = await connectIngress(config);
  const consumer = await runtime.consume(config.KAFKA_CONSUMER_GROUP, (message) => console.log(`ingress: ${message}`));
  console.log(`ingress: consuming ${inboundTopics.map((name) => runtime.topics[name]).join(', ')} from ${config.KAFKA_BROKERS.join(',')}`);

  const shutdown = async () => {
    await consumer.disconnect();
    await runtime.close();
  };
  process.once('SIGINT', () => void shutdown());
  process.once('SIGTERM', () => void shutdown());
}

main().catch((error: unknown) => {
  console.error('ingress: failed:', error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
