import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import { Client, Pool } from 'pg';
import type { OutboundEvent } from '../events/outbound';
import type { EventPublisher } from '../events/publisher';
import { TopicNames, topicsFor, type TopicName } from '../events/topics';
import { traceContextOf, traceContextOfSpan, withRemoteParent } from '../events/trace-context';
import { componentLogger, logLine, type LogLine } from './logger';

/**
 * The outbox relay: publishes every OutboxEvent row to Kafka and marks it published.
 *
 * Rows are split into shards by their key (the generated column "shard", see the migration
 * 20261129050000_outbox_relay). A relay publishes a shard only while it holds the shard's advisory
 * transaction lock, oldest position first, and marks the rows in the same transaction. So several relays
 * may run at once: a row is published once (at least once if a relay dies between send and commit: the
 * CloudEvent ids are deterministic, consumers drop copies) and the events of one key keep their order.
 *
 * A statement trigger NOTIFYs `selfservice_outbox` on insert, which wakes the relay at once; it also polls
 * every `pollIntervalMs`, in case a notification was missed (the listening connection reconnects).
 *
 * A row written `held` (its command's affected requests are being told first) waits, and so do the later
 * rows of its key, until it is released (held = false, then a NOTIFY).
 */

/** The channel the OutboxEvent trigger notifies. */
export const OUTBOX_CHANNEL = 'selfservice_outbox';
/** Shards of the "shard" column (hashtext(key) & 15). */
export const OUTBOX_SHARDS = 16;

/** Shards published at once, each on a connection of its own. */
const SHARDS_AT_ONCE = 4;

const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 30_000;

export interface OutboxRelayOptions {
  /** The application role's URL (DATABASE_URL). */
  databaseUrl: string;
  publisher: EventPublisher;
  /** The deployment's KAFKA_TOPIC_NAMESPACE: the relay publishes the rows written under it only. */
  namespace: string;
  /** The logical topics this relay publishes (default: all of the contract); rows of other topics wait. */
  topics?: readonly TopicName[];
  /** Log lines (the process's logger); a batch's lines are bound to its shard. */
  log?: LogLine;
  /** Counts for Prometheus (workers/metrics.ts); none in tests. */
  metrics?: OutboxRelayMetrics;
  /** Rows per shard and transaction (default 500). */
  batchSize?: number;
  /** Polling when no notification comes (default 1000 ms). */
  pollIntervalMs?: number;
  /** Called on each notification too (the audit sealer wakes with the relay: an audited command writes outbox rows). */
  onNotification?: () => void;
}

/** What the relay reports for Prometheus. */
export interface OutboxRelayMetrics {
  published(count: number): void;
  publishFailed(): void;
  /** The notification connection is (not) LISTENing. */
  listening(connected: boolean): void;
}

export interface OutboxBacklog {
  /** Unpublished rows. */
  count: number;
  /** Age of the oldest unpublished row, null when there is none. */
  oldestAgeSeconds: number | null;
}

export interface OutboxRelay {
  /** Finishes the pass in progress, then closes the database connections (not the publisher). */
  stop(): Promise<void>;
  backlog(): Promise<OutboxBacklog>;
  /** Runs a pass now (as a notification does), unless the relay is backing off after a failure. */
  wake(): void;
  /** True while the notification connection LISTENs (readiness). */
  listening(): boolean;
}

interface OutboxRow {
  id: string;
  topic: string;
  type: string;
  key: string;
  data: Record<string, unknown>;
  time: Date;
  held: boolean;
  traceparent: string | null;
}

// Timestamps are stored without time zone, in UTC (as Prisma writes them).
/**
 * A row is held while the ingress tells the requests its command affects (seconds). A hold older than
 * five minutes is a process that died or failed mid-way without its record being redelivered: the row
 * then goes out, so that one such command can never stop its shard.
 */
const STILL_HELD = `("held" AND "createdAt" > now() AT TIME ZONE 'UTC' - interval '5 minutes')`;
const PENDING_SHARDS = `
  SELECT s AS shard FROM generate_series(0, $1::int - 1) AS s
  WHERE EXISTS (SELECT 1 FROM "OutboxEvent" WHERE "shard" = s AND "publishedAt" IS NULL AND NOT ${STILL_HELD} AND "topic" = ANY($2::text[]) AND "namespace" = $3)`;
/** A shard of a namespace is taken by one relay at a time: pg_try_advisory_xact_lock(hash of the namespace, shard). */
const TAKE_SHARD = `SELECT pg_try_advisory_xact_lock(hashtext('selfservice-outbox:' || $1), $2) AS taken`;
const NEXT_BATCH = `
  SELECT "id", "topic", "type", "key", "data", "time" AT TIME ZONE 'UTC' AS "time", ${STILL_HELD} AS "held", "traceparent" FROM "OutboxEvent"
  WHERE "shard" = $1 AND "publishedAt" IS NULL AND "topic" = ANY($2::text[]) AND "namespace" = $4
  ORDER BY "position" LIMIT $3
  FOR UPDATE`;
const MARK_PUBLISHED = `UPDATE "OutboxEvent" SET "publishedAt" = now() AT TIME ZONE 'UTC' WHERE "id" = ANY($1::text[])`;
const BACKLOG = `
  SELECT count(*)::int AS count, extract(epoch FROM now() AT TIME ZONE 'UTC' - min("createdAt"))::float8 AS "oldestAgeSeconds"
  FROM "OutboxEvent" WHERE "publishedAt" IS NULL AND "namespace" = $1`;

/** The unpublished rows of a namespace and the age of the oldest: what the relays have still to do. */
export async function readOutboxBacklog(query: Pick<Pool, 'query'>, namespace: string): Promise<OutboxBacklog> {
  const { rows } = await query.query<OutboxBacklog>(BACKLOG, [namespace]);
  return rows[0] ?? { count: 0, oldestAgeSeconds: null };
}

export function startOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  const { databaseUrl, publisher, batchSize = 500, pollIntervalMs = 1000 } = options;
  const log: LogLine = options.log ?? logLine(componentLogger('relay', { namespace: options.namespace }), 'warn');
  const topics = [...(options.topics ?? (Object.keys(TopicNames) as TopicName[]))];
  const pool = new Pool({ connectionString: databaseUrl, max: SHARDS_AT_ONCE, application_name: 'outbox-relay' });
  pool.on('error', (error) => log(`idle database connection lost: ${brief(error)}`)); // the pool replaces it

  let stopping = false;
  let woken = false; // a notification came during the pass: run another
  let failures = 0; // consecutive failed passes: the back-off
  let firstShard = 0; // a pass starts after the shard that failed last, so one bad shard blocks no other
  let listener: Client | null = null;
  const passAlarm = new Alarm();
  const listenAlarm = new Alarm();

  function wake(): void {
    if (stopping) return;
    woken = true;
    if (failures === 0) passAlarm.ring();
  }

  /** One shard's next batch, in one transaction. True when more rows may wait (a full batch went out). */
  async function publishBatch(shard: number): Promise<boolean> {
    const client = await pool.connect();
    let healthy = true;
    try {
      await client.query('BEGIN');
      const lock = await client.query<{ taken: boolean }>(TAKE_SHARD, [options.namespace, shard]);
      if (!lock.rows[0]?.taken) {
        await client.query('ROLLBACK'); // another relay has this shard
        return false;
      }
      const { rows } = await client.query<OutboxRow>(NEXT_BATCH, [shard, topics, batchSize, options.namespace]);
      const ready: OutboxRow[] = [];
      const waiting = new Set<string>(); // keys with a held row: their later rows wait for it
      for (const row of rows) {
        if (row.held || waiting.has(row.key)) waiting.add(row.key);
        else ready.push(row);
      }
      if (ready.length > 0) {
        await publishTraced(publisher, ready, options.namespace);
        options.metrics?.published(ready.length);
        await client.query(MARK_PUBLISHED, [ready.map((row) => row.id)]);
      }
      await client.query('COMMIT');
      return ready.length > 0 && rows.length === batchSize;
    } catch (error) {
      healthy = await client.query('ROLLBACK').then(() => true, () => false);
      throw new Error(`shard ${shard}: ${brief(error)}`, { cause: error });
    } finally {
      client.release(!healthy); // a connection that cannot even roll back is closed, not reused
    }
  }

  /**
   * A batch of every shard that has unpublished rows, SHARDS_AT_ONCE shards at a time (a request's
   * events fall in several shards: they go out together). True when a batch was full (more may wait).
   */
  async function pass(): Promise<boolean> {
    const { rows } = await pool.query<{ shard: number }>(PENDING_SHARDS, [OUTBOX_SHARDS, topics, options.namespace]);
    const shards = rows.map((row) => row.shard).sort((a, b) => rank(a) - rank(b));
    let full = false;
    let failed: { shard: number; error: unknown } | null = null;
    const next = async (): Promise<void> => {
      for (let shard = shards.shift(); shard !== undefined && !failed; shard = shards.shift()) {
        try {
          if (await publishBatch(shard)) full = true;
        } catch (error) {
          failed ??= { shard, error };
        }
      }
    };
    await Promise.all(Array.from({ length: SHARDS_AT_ONCE }, next));
    if (failed) {
      const { shard, error } = failed;
      firstShard = (shard + 1) % OUTBOX_SHARDS;
      throw error;
    }
    return full;
  }
  const rank = (shard: number) => (shard - firstShard + OUTBOX_SHARDS) % OUTBOX_SHARDS;

  async function relay(): Promise<void> {
    while (!stopping) {
      woken = false;
      try {
        const full = await pass();
        if (failures > 0) log(`publishing again after ${failures} failed attempt(s)`);
        failures = 0;
        if (!full && !woken && !stopping) await passAlarm.wait(pollIntervalMs);
      } catch (error) {
        failures += 1;
        options.metrics?.publishFailed();
        const delay = backoffMs(failures);
        const shard = /^shard (\d+):/.exec(error instanceof Error ? error.message : '')?.[1];
        log(`publish failed (attempt ${failures}, next in ${delay} ms): ${brief(error)}`, shard ? { shard: Number(shard) } : undefined);
        if (!stopping) await passAlarm.wait(delay); // notifications do not shorten a back-off, stop() does
      }
    }
  }

  /** LISTEN on a connection of its own; reconnects with back-off when it drops. */
  async function listen(): Promise<void> {
    let attempt = 0;
    while (!stopping) {
      const client = new Client({ connectionString: databaseUrl, application_name: 'outbox-relay-listener', keepAlive: true });
      const closed = new Promise<unknown>((resolve) => {
        client.on('error', resolve);
        client.on('end', () => resolve(new Error('connection ended')));
      });
      try {
        await client.connect();
        client.on('notification', () => {
          wake();
          options.onNotification?.();
        });
        await client.query(`LISTEN ${OUTBOX_CHANNEL}`);
        listener = client; // from here stop() ends it
        options.metrics?.listening(true);
        if (attempt > 0) log('listening for notifications again');
        attempt = 0;
        wake(); // rows written while nobody listened
        if (!stopping) {
          const error = await closed;
          if (!stopping) log(`notification connection lost: ${brief(error)}`);
        }
      } catch (error) {
        if (!stopping) log(`cannot listen for notifications: ${brief(error)}`);
      } finally {
        listener = null;
        options.metrics?.listening(false);
        await client.end().catch(() => undefined);
      }
      attempt += 1;
      if (!stopping) await listenAlarm.wait(backoffMs(attempt));
    }
  }

  const relaying = relay();
  const listening = listen();
  let stopped: Promise<void> | undefined;

  return {
    wake,
    listening: () => listener !== null,
    backlog: () => readOutboxBacklog(pool, options.namespace),
    stop() {
      stopped ??= (async () => {
        stopping = true;
        passAlarm.ring();
        listenAlarm.ring();
        await listener?.end().catch(() => undefined);
        await Promise.all([relaying, listening]);
        await pool.end();
      })();
      return stopped;
    },
  };
}

function toEvent(row: OutboxRow): OutboundEvent {
  return { id: row.id, topic: row.topic as TopicName, type: row.type, key: row.key, data: row.data, time: row.time.toISOString(), ...(row.traceparent ? { traceparent: row.traceparent } : {}) };
}

const relayTracer = () => trace.getTracer('selfservice-outbox-relay');

/**
 * Publishes rows, each in a PRODUCER span (`publish <topic>`), a child of the trace its writer recorded;
 * the event carries that span's traceparent (`ce_traceparent`). Tracing off, the API's no-op span keeps
 * the recorded traceparent, which the event then carries as it is.
 */
async function publishTraced(publisher: EventPublisher, rows: readonly OutboxRow[], namespace: string): Promise<void> {
  const spans: Span[] = [];
  const topics = topicsFor(namespace);
  const events = rows.map((row) => {
    const parent = withRemoteParent(ROOT_CONTEXT, traceContextOf({ traceparent: row.traceparent }));
    const topic = topics[row.topic as TopicName] ?? row.topic;
    const span = relayTracer().startSpan(
      `publish ${topic}`,
      {
        kind: SpanKind.PRODUCER,
        attributes: { 'messaging.system': 'kafka', 'messaging.operation': 'publish', 'messaging.destination.name': topic, 'messaging.message.id': row.id, 'cloudevents.event_id': row.id, 'cloudevents.event_type': row.type },
      },
      parent,
    );
    spans.push(span);
    const traced = traceContextOfSpan(span.spanContext());
    return { ...toEvent(row), ...(traced ? { traceparent: traced.traceparent } : {}) };
  });
  try {
    await publisher.publish(events);
  } catch (error) {
    for (const span of spans) span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.name : 'error' });
    throw error;
  } finally {
    for (const span of spans) span.end();
  }
}

export function backoffMs(attempt: number): number {
  return Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (attempt - 1));
}

/** An error as one short line: never a payload dump in the log. */
export function brief(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const line = message.replace(/\s+/g, ' ').trim();
  return line.length > 200 ? `${line.slice(0, 200)}...` : line;
}

/** A wait that ends after its time or when rung, whichever comes first. */
export class Alarm {
  private ringer: (() => void) | null = null;

  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      this.ringer = done;
      function done() {
        clearTimeout(timer);
        resolve();
      }
    });
  }

  ring(): void {
    const ringer = this.ringer;
    this.ringer = null;
    ringer?.();
  }
}
