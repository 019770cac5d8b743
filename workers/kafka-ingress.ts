import { inboundTopics } from '../events/topics';
import { loadConfig } from './config';
import { componentLogger, configureLogging, logLine } from './logger';
import { startTracing } from './tracing';
import { createIngressMetrics } from './metrics';
import { closeServer, newProcessRegistry, onShutdownSignals, OpsEndpoints, startOpsServer } from './ops-server';
import { connectIngress } from './runtime';

/** The Kafka ingress process: validates inbound commands and hands them to Temporal. */
async function main(): Promise<void> {
  const config = loadConfig();
  configureLogging(config);
  const tracing = startTracing(config, { serviceName: 'selfservice-ingress' });
  const runtime = await connectIngress(config);
  const registry = newProcessRegistry('ingress');
  const metrics = createIngressMetrics(registry);
  const ops = new OpsEndpoints({
    registry,
    // Ready: a member of its group, and the database answers.
    readiness: async () => ({
      'kafka-consumer-group': metrics.joined,
      database: await runtime.db.$queryRaw`SELECT 1`.then(() => true, () => false),
    }),
    log: logLine(log, 'warn'),
  });
  const server = await startOpsServer(ops, { host: config.OPS_HOST, port: config.INGRESS_OPS_PORT, name: 'ingress' });
  const consumer = await runtime.consume(config.KAFKA_CONSUMER_GROUP, logLine(log, 'warn'), metrics);
  log.info({ tracing: tracing !== null }, `ingress: consuming ${inboundTopics.map((name) => runtime.topics[name]).join(', ')} from ${config.KAFKA_BROKERS.join(',')}`);

  // SIGTERM/SIGINT: no new batch is begun; the batches in hand finish the group or record they are on,
  // their handled offsets are committed and the consumer leaves its group (its partitions move at once);
  // what was not begun is consumed by the next member. Then the producers and the database close.
  onShutdownSignals({
    name: 'ingress',
    graceMs: config.SHUTDOWN_GRACE_SECONDS * 1000,
    ops,
    stop: async () => {
      await consumer.disconnect();
      await runtime.close();
      await closeServer(server);
      await tracing?.shutdown();
    },
  });
}

const log = componentLogger('ingress');

main().catch((error: unknown) => {
  log.fatal(`ingress: failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
