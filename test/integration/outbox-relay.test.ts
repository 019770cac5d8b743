import type { Kafka } from 'kafkajs';
import { Client } from 'pg';
import { createKafka, ensureTopics } from '../../events/kafka';
import type { OutboundEvent } from '../../events/outbound';
import { KafkaEventPublisher, type EventPublisher } from '../../events/publisher';
import type { Topics } from '../../events/topics';
import { kafkaSettingsFrom, topicPolicyFrom } from '../../workers/kafka-settings';
import { startOutboxRelay, type OutboxRelay, type OutboxRelayOptions } from '../../workers/outbox-relay';
import { TopicProbe } from '../support/kafka-probe';
import { testConfig, testDatabaseUrl, uniqueId } from '../support/test-config';

/**
 * The outbox relay on the real PostgreSQL and Kafka: rows written to OutboxEvent reach Kafka without any
 * publishEvents call. The database is shared with other test files, so the assertions are about the
 * rows this file writes (ids with a unique prefix). Rows carry the topic namespace of their writer, and
 * a relay publishes its own namespace's rows only, so this file's relays never see another's rows.
 */
describe('outbox relay', () => {
  const config = testConfig();
  const prefix = uniqueId('relay');
  let kafka: Kafka;
  let topics: Topics;
  let publisher: KafkaEventPublisher;
  let probe: TopicProbe;
  let db: Client; // as the application role, as the backend writes the outbox
  const relays: OutboxRelay[] = [];

  beforeAll(async () => {
    kafka = createKafka({ ...kafkaSettingsFrom(config), clientId: 'selfservice-test-relay' });
    topics = await ensureTopics(kafka, config.KAFKA_TOPIC_NAMESPACE, topicPolicyFrom(config));
    publisher = await KafkaEventPublisher.connect(kafka, topics);
    probe = await TopicProbe.start(kafka, [topics.dashboard]);
    // As the backend's connections do: the rows record this file's topic namespace.
    db = new Client({ connectionString: testDatabaseUrl(), options: `-c selfservice.topic_namespace=${config.KAFKA_TOPIC_NAMESPACE}` });
    await db.connect();
  });

  afterEach(async () => {
    await Promise.all(relays.splice(0).map((relay) => relay.stop()));
  });

  afterAll(async () => {
    await probe?.stop();
    await publisher?.disconnect();
    await db?.end();
  });

  function startRelay(options: Partial<OutboxRelayOptions> = {}): OutboxRelay {
    const relay = startOutboxRelay({ databaseUrl: testDatabaseUrl(), namespace: config.KAFKA_TOPIC_NAMESPACE, publisher, log: () => undefined, ...options });
    relays.push(relay);
    return relay;
  }

  let written = 0;
  /** Writes outbox rows to the dashboard topic, one INSERT statement; returns their ids in position order. */
  async function writeEvents(keys: string[], options: { ageSeconds?: number; held?: boolean } = {}): Promise<string[]> {
    const ids = keys.map(() => `${prefix}:${(written += 1)}`);
    await db.query(
      `INSERT INTO "OutboxEvent" ("id", "topic", "type", "key", "data", "time", "createdAt", "held")
       SELECT id, 'dashboard', 'test.outbox-relay.v1', key, jsonb_build_object('n', ord), now() AT TIME ZONE 'UTC',
              now() AT TIME ZONE 'UTC' - make_interval(secs => $3), $4
       FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS r(id, key, ord) ORDER BY ord`,
      [ids, keys, options.ageSeconds ?? 0, options.held ?? false],
    );
    return ids;
  }

  const seen = (ids: readonly string[]) => {
    const wanted = new Set(ids);
    return probe.matching((record) => record.id !== undefined && wanted.has(record.id));
  };

  async function until(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await condition())) {
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Backends of this database that LISTEN for the relay's notifications. */
  async function listeners(): Promise<number[]> {
    const { rows } = await db.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity
       WHERE datname = current_database() AND application_name = 'outbox-relay-listener' AND query = 'LISTEN selfservice_outbox'`,
    );
    return rows.map((row) => row.pid);
  }

  test('a NOTIFY wakes it: rows are published at once though it polls only every 60 s, also after its connection dropped', async () => {
    const lines: string[] = [];
    startRelay({ pollIntervalMs: 60_000, log: (line) => lines.push(line) });
    await until('the relay to listen', async () => (await listeners()).length === 1);
    await new Promise((resolve) => setTimeout(resolve, 1000)); // its first pass (rows other tests left) is over

    const started = Date.now();
    const ids = await writeEvents(['k-a', 'k-b', 'k-a']);
    await until('the three events on Kafka', () => seen(ids).length === 3, 5000);
    expect(Date.now() - started).toBeLessThan(3000);

    // The listening connection drops: the relay listens again (after a back-off) and is woken again.
    const [dropped] = await listeners();
    await db.query('SELECT pg_terminate_backend($1)', [dropped]);
    await until('the relay to listen again', async () => {
      const now = await listeners();
      return now.length === 1 && now[0] !== dropped;
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const later = Date.now();
    const more = await writeEvents(['k-c']);
    await until('the event on Kafka', () => seen(more).length === 1, 5000);
    expect(Date.now() - later).toBeLessThan(3000);
    expect(lines.some((line) => line.startsWith('notification connection lost'))).toBe(true);
    expect(lines).toContain('listening for notifications again');
  });

  test("a relay publishes its own topic namespace's rows only: another deployment's relay on the same database leaves them", async () => {
    const published: string[] = [];
    const elsewhere: EventPublisher = {
      async publish(events: readonly OutboundEvent[]) {
        published.push(...events.map((event) => event.id));
      },
    };
    startRelay({ publisher: elsewhere, namespace: `${config.KAFKA_TOPIC_NAMESPACE}other.`, pollIntervalMs: 100 });
    const ids = await writeEvents(['k-ns']);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(published.filter((id) => ids.includes(id))).toEqual([]);
    const row = await db.query<{ published: boolean }>('SELECT "publishedAt" IS NOT NULL AS published FROM "OutboxEvent" WHERE "id" = $1', [ids[0]]);
    expect(row.rows[0]?.published).toBe(false);

    startRelay();
    await until('the event on Kafka through its own relay', () => seen(ids).length === 1, 10_000);
  });

  test('two relays at once publish 2,000 rows over 50 keys each exactly once, in position order per key', async () => {
    const publishedBy = [0, 0];
    const counting = (relay: number): EventPublisher => ({
      async publish(events: readonly OutboundEvent[]) {
        await publisher.publish(events);
        publishedBy[relay]! += events.filter((event) => event.id.startsWith(`${prefix}:`)).length;
      },
    });
    startRelay({ publisher: counting(0), batchSize: 50 });
    startRelay({ publisher: counting(1), batchSize: 50 });

    // 20 statements of 100 rows while both relays run; keys drawn at random among 50.
    const ids: string[] = [];
    for (let statement = 0; statement < 20; statement += 1) {
      const keys = Array.from({ length: 100 }, () => `key-${Math.floor(Math.random() * 50)}`);
      ids.push(...(await writeEvents(keys)));
    }
    await until('2,000 events on Kafka', () => seen(ids).length >= 2000, 60_000);
    await new Promise((resolve) => setTimeout(resolve, 1000)); // room for a copy to show up

    const records = seen(ids);
    expect(records).toHaveLength(2000);
    expect(new Set(records.map((record) => record.id)).size).toBe(2000);
    expect(publishedBy[0]! + publishedBy[1]!).toBe(2000);
    expect(publishedBy[0]).toBeGreaterThan(0);
    expect(publishedBy[1]).toBeGreaterThan(0);

    // Per key, the order on Kafka (one partition per key) is the order of the rows' positions.
    const { rows } = await db.query<{ id: string; position: string; published: boolean }>(
      `SELECT "id", "position", "publishedAt" IS NOT NULL AS published FROM "OutboxEvent" WHERE "id" = ANY($1::text[])`,
      [ids],
    );
    expect(rows.filter((row) => !row.published)).toEqual([]);
    const position = new Map(rows.map((row) => [row.id, BigInt(row.position)]));
    const byKey = new Map<string, bigint[]>();
    for (const record of records) byKey.set(record.key!, [...(byKey.get(record.key!) ?? []), position.get(record.id!)!]);
    expect(byKey.size).toBeGreaterThan(40);
    for (const [key, positions] of byKey) {
      const sorted = [...positions].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      expect({ key, positions }).toEqual({ key, positions: sorted });
    }
  });

  test('a held row waits, and so do the later rows of its key; released, they go out in order', async () => {
    startRelay();
    const [held] = await writeEvents(['k-held'], { held: true });
    const [behind, free] = await writeEvents(['k-held', 'k-free']);
    await until('the event of the other key on Kafka', () => seen([free!]).length === 1, 5000);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(seen([held!, behind!])).toEqual([]);

    // Released as the ingress does it: held = false, then a notification.
    await db.query(`UPDATE "OutboxEvent" SET "held" = false WHERE "id" = $1`, [held]);
    await db.query(`SELECT pg_notify('selfservice_outbox', '')`);
    await until('the held key on Kafka', () => seen([held!, behind!]).length === 2, 5000);
    expect(seen([held!, behind!]).map((record) => record.id)).toEqual([held, behind]);
  });

  test('a publisher that fails three times loses nothing; backlog() reports the waiting rows and their age', async () => {
    const ids = await writeEvents(['k-flaky', 'k-flaky', 'k-other'], { ageSeconds: 90 });
    let failuresLeft = 3;
    const flaky: EventPublisher = {
      async publish(events) {
        if (failuresLeft > 0) {
          failuresLeft -= 1;
          throw new Error(`Kafka is down (test)\n${'and a very long detail '.repeat(500)}`);
        }
        await publisher.publish(events);
      },
    };
    const lines: string[] = [];
    const relay = startRelay({ publisher: flaky, log: (line) => lines.push(line) });

    const before = await relay.backlog();
    expect(before.count).toBeGreaterThanOrEqual(3);
    expect(before.oldestAgeSeconds).toBeGreaterThanOrEqual(89);

    await until('the three events on Kafka', () => seen(ids).length === 3, 20_000);
    // Shards go out several at a time, so one failed pass may use up more than one of the failures.
    expect(failuresLeft).toBe(0);
    const failed = lines.filter((line) => line.startsWith('publish failed'));
    expect(failed.length).toBeGreaterThanOrEqual(2);
    expect(failed.length).toBeLessThanOrEqual(3);
    for (const line of failed) expect(line.length).toBeLessThan(300);
    expect(failed[0]).toMatch(/^publish failed \(attempt 1, next in 500 ms\): shard \d+: Kafka is down \(test\) and a very long detail/);
    // Logged once the pass that got through has committed, a moment after its events reached Kafka.
    await until('the relay to say it publishes again', () => lines.includes(`publishing again after ${failed.length} failed attempt(s)`), 5000);

    const after = await relay.backlog();
    expect(after.count).toBeLessThanOrEqual(before.count - 3);
    const { rows } = await db.query(`SELECT 1 FROM "OutboxEvent" WHERE "id" = ANY($1::text[]) AND "publishedAt" IS NULL`, [ids]);
    expect(rows).toEqual([]);
    // The relay is still running: a new row goes out too.
    const more = await writeEvents(['k-flaky']);
    await until('the new event on Kafka', () => seen(more).length === 1, 5000);
    expect(seen([...ids, ...more])).toHaveLength(4);
  });
});
