import { createKafka, ensureTopics } from '../events/kafka';
import { KafkaEventPublisher } from '../events/publisher';
import { loadConfig } from './config';
import { componentLogger, configureLogging, logLine } from './logger';
import { startTracing } from './tracing';
import { kafkaSettingsFrom, topicPolicyFrom } from './kafka-settings';
import { createAuditSealerMetrics, createRelayMetrics } from './metrics';
import { startAuditSealer } from './audit-sealer';
import { closeServer, newProcessRegistry, onShutdownSignals, OpsEndpoints, startOpsServer } from './ops-server';
import { startOutboxRelay } from './outbox-relay';

/** How often the backlog gauges are read (one count over the unpublished rows' partial index). */
const BACKLOG_EVERY_MS = 5000;

/** The outbox relay process: publishes every outbox row to Kafka (workers/outbox-relay.ts). Run one or several. */
async function main(): Promise<void> {
  const config = loadConfig();
  configureLogging(config);
  const tracing = startTracing(config, { serviceName: 'selfservice-relay' });
  const kafka = createKafka({ ...kafkaSettingsFrom(config), clientId: `${config.KAFKA_CLIENT_ID}-relay` });
  const topics = await ensureTopics(kafka, config.KAFKA_TOPIC_NAMESPACE, topicPolicyFrom(config));
  const publisher = await KafkaEventPublisher.connect(kafka, topics);
  const registry = newProcessRegistry('relay');
  const metrics = createRelayMetrics(registry, config.KAFKA_TOPIC_NAMESPACE);
  // The audit sealer chains new audit entries (workers/audit-sealer.ts); it wakes with the relay.
  const sealerMetrics = createAuditSealerMetrics(registry);
  const sealer = startAuditSealer({ databaseUrl: config.DATABASE_URL, metrics: sealerMetrics, log: logLine(componentLogger('audit-sealer'), 'warn') });
  const relay = startOutboxRelay({ databaseUrl: config.DATABASE_URL, namespace: config.KAFKA_TOPIC_NAMESPACE, publisher, metrics, log: logLine(log, 'warn'), onNotification: sealer.wake });
  const ops = new OpsEndpoints({ registry, readiness: () => ({ 'database-listener': relay.listening() }), log: (line) => log.warn(line) });
  const server = await startOpsServer(ops, { host: config.OPS_HOST, port: config.RELAY_OPS_PORT, name: 'relay', log: (line) => log.info(line) });
  const readBacklog = () =>
    Promise.all([
      relay.backlog().then(
        (backlog) => metrics.backlog(backlog),
        () => undefined, // the database is away: the relay logs it; the gauges keep their last value
      ),
      sealer.backlog().then(
        (backlog) => sealerMetrics.backlog(backlog),
        () => undefined,
      ),
    ]);
  const backlogTimer = setInterval(() => void readBacklog(), BACKLOG_EVERY_MS);
  void readBacklog();
  log.info({ namespace: config.KAFKA_TOPIC_NAMESPACE, tracing: tracing !== null }, `relay: publishing the outbox to ${config.KAFKA_BROKERS.join(',')} (topic namespace "${config.KAFKA_TOPIC_NAMESPACE}")`);

  // SIGTERM/SIGINT (README "Operations"): readiness off; the pass in progress finishes (its transactions
  // commit, which releases the shard locks), the connections close, then the producer; a second signal
  // or SHUTDOWN_GRACE_SECONDS passing exits at once.
  const shutdown = async () => {
    clearInterval(backlogTimer);
    await relay.stop();
    await sealer.stop();
    await publisher.disconnect();
    await tracing?.shutdown();
    await closeServer(server);
    log.info('stopped');
  };
  onShutdownSignals({ name: 'relay', graceMs: config.SHUTDOWN_GRACE_SECONDS * 1000, ops, stop: shutdown, log: (line) => log.info(line) });
}

const log = componentLogger('relay');

main().catch((error: unknown) => {
  log.fatal(`relay: failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
