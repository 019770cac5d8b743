import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { IngressMetrics } from './ingress';
import type { OutboxBacklog, OutboxRelayMetrics } from './outbox-relay';
import type { AuditSealBacklog } from '../activities/audit-chain';
import type { AuditSealerMetrics } from './audit-sealer';

/**
 * The project's own Prometheus metrics (README "Operations" lists those worth an alert). Labels are
 * topics, partitions, codes, kinds and outcomes: never a user, org, request or command id.
 */

export interface IngressMetricsSink extends IngressMetrics {
  /** Whether the consumer is in its group now (readiness). */
  readonly joined: boolean;
}

export function createIngressMetrics(registry: Registry): IngressMetricsSink {
  const records = new Counter({
    name: 'selfservice_ingress_records_total',
    help: 'Inbound records taken off their topic, by outcome of validation (valid: a command; invalid: dead-lettered)',
    labelNames: ['topic', 'outcome'],
    registers: [registry],
  });
  const claims = new Counter({
    name: 'selfservice_ingress_claims_total',
    help: 'Command ids claimed in the ledger, by result (repeat: a redelivery or a producer retry; conflict: an id reused)',
    labelNames: ['result'],
    registers: [registry],
  });
  const deadLetters = new Counter({
    name: 'selfservice_ingress_dead_letters_total',
    help: 'Records copied to the dead-letter topic, by source topic and code',
    labelNames: ['topic', 'code'],
    registers: [registry],
  });
  const rejections = new Counter({
    name: 'selfservice_ingress_rejections_total',
    help: 'Rejected results the ingress recorded itself (refused records, id conflicts, incidents), by code',
    labelNames: ['code'],
    registers: [registry],
  });
  const handling = new Histogram({
    name: 'selfservice_ingress_handling_seconds',
    help: 'Time to handle an inbound record (its group, for grouped kinds), by kind: apply, workflow, update, refused',
    labelNames: ['kind'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  const lag = new Gauge({
    name: 'selfservice_ingress_consumer_lag',
    help: 'Records of a partition not yet handled (high watermark - 1 - last handled offset), as of the last batch',
    labelNames: ['topic', 'partition'],
    registers: [registry],
  });
  const joinedGauge = new Gauge({
    name: 'selfservice_ingress_group_joined',
    help: '1 while the consumer is a member of its group',
    registers: [registry],
  });
  let joined = false;
  return {
    get joined() {
      return joined;
    },
    record: (topic, outcome) => records.inc({ topic, outcome }),
    claim: (result) => claims.inc({ result }),
    deadLetter: (topic, code) => deadLetters.inc({ topic, code }),
    rejection: (code) => rejections.inc({ code }),
    handled(kind, seconds, count) {
      for (let i = 0; i < count; i += 1) handling.observe({ kind }, seconds);
    },
    lag: (topic, partition, value) => lag.set({ topic, partition: String(partition) }, value),
    membership(now) {
      joined = now;
      joinedGauge.set(now ? 1 : 0);
      if (now) lag.reset(); // partitions may have moved to other members
    },
  };
}

export interface RelayMetricsSink extends OutboxRelayMetrics {
  backlog(backlog: OutboxBacklog): void;
}

export function createRelayMetrics(registry: Registry, namespace: string): RelayMetricsSink {
  const labels = { namespace };
  const published = new Counter({
    name: 'selfservice_outbox_published_total',
    help: 'Outbox rows published to Kafka (and marked) by this relay',
    labelNames: ['namespace'],
    registers: [registry],
  });
  const failures = new Counter({
    name: 'selfservice_outbox_publish_failures_total',
    help: 'Failed publishing passes (each is retried with back-off)',
    labelNames: ['namespace'],
    registers: [registry],
  });
  const backlog = new Gauge({
    name: 'selfservice_outbox_backlog',
    help: 'Unpublished outbox rows of the namespace (all relays), read every 5 s',
    labelNames: ['namespace'],
    registers: [registry],
  });
  const oldest = new Gauge({
    name: 'selfservice_outbox_oldest_age_seconds',
    help: 'Age of the oldest unpublished outbox row of the namespace (0 when none), read every 5 s',
    labelNames: ['namespace'],
    registers: [registry],
  });
  const listening = new Gauge({
    name: 'selfservice_outbox_listener_connected',
    help: '1 while the relay LISTENs for outbox notifications',
    labelNames: ['namespace'],
    registers: [registry],
  });
  published.inc(labels, 0);
  failures.inc(labels, 0);
  return {
    published: (count) => published.inc(labels, count),
    publishFailed: () => failures.inc(labels),
    listening: (now) => listening.set(labels, now ? 1 : 0),
    backlog(value) {
      backlog.set(labels, value.count);
      oldest.set(labels, value.oldestAgeSeconds ?? 0);
    },
  };
}

export interface AuditSealerMetricsSink extends AuditSealerMetrics {
  backlog(backlog: AuditSealBacklog): void;
}

/** The audit sealer's (in the relay process): entries chained, failed passes, and what waits to be chained. */
export function createAuditSealerMetrics(registry: Registry): AuditSealerMetricsSink {
  const sealed = new Counter({ name: 'selfservice_audit_sealed_total', help: 'Audit entries chained (sealed) by this process', registers: [registry] });
  const failures = new Counter({ name: 'selfservice_audit_seal_failures_total', help: 'Failed sealing passes (each is retried with back-off)', registers: [registry] });
  const unsealed = new Gauge({ name: 'selfservice_audit_unsealed_entries', help: 'Audit entries not chained yet (every org), read every 5 s', registers: [registry] });
  const oldest = new Gauge({
    name: 'selfservice_audit_oldest_unsealed_age_seconds',
    help: 'Age of the oldest audit entry not chained yet (0 when none), read every 5 s',
    registers: [registry],
  });
  sealed.inc(0);
  failures.inc(0);
  return {
    sealed: (count) => sealed.inc(count),
    sealFailed: () => failures.inc(),
    backlog(value) {
      unsealed.set(value.count);
      oldest.set(value.oldestAgeSeconds ?? 0);
    },
  };
}

/** The worker's own metric beside Node's and the Temporal SDK's (which count activities and tasks by type). */
export function createWorkerMetrics(registry: Registry, state: () => string): void {
  new Gauge({
    name: 'selfservice_worker_running',
    help: '1 while the Temporal worker polls its task queue (state RUNNING)',
    registers: [registry],
    collect() {
      this.set(state() === 'RUNNING' ? 1 : 0);
    },
  });
}
