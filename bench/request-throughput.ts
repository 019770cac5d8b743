import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { Partitioners } from 'kafkajs';
import { encodeCloudEvent } from '../events/cloudevents';
import type { Command } from '../events/inbound';
import { loadConfig } from '../workers/config';
import { connectIngress, createWorker } from '../workers/runtime';
import { testDatabaseUrl, testOwnerDatabaseUrl } from '../test/support/test-config';

/**
 * Throughput and latency of auto-granted app requests end to end (Kafka -> ingress -> Temporal ->
 * PostgreSQL -> Kafka), reported as ratios against bare Temporal (one workflow, one no-op activity)
 * measured in the same run on the same server. Usage: npm run bench [-- <requests>]
 */
const REQUESTS = Number(process.argv[2] ?? 200);
const root = path.resolve(__dirname, '..');

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function baseline(address: string, namespace: string): Promise<{ seconds: number; latencies: number[] }> {
  const taskQueue = `bench-baseline-${randomUUID().slice(0, 8)}`;
  const connection = await NativeConnection.connect({ address });
  const worker = await Worker.create({
    connection,
    namespace,
    taskQueue,
    workflowsPath: require.resolve('./baseline-workflow'),
    activities: { noop: async () => undefined },
  });
  const clientConnection = await Connection.connect({ address });
  const client = new Client({ connection: clientConnection, namespace });
  const result = await worker.runUntil(async () => {
    const started = Date.now();
    const latencies = await Promise.all(
      Array.from({ length: REQUESTS }, async () => {
        const t0 = Date.now();
        await client.workflow.execute('baselineWorkflow', { taskQueue, workflowId: `bench-baseline-${randomUUID()}` });
        return Date.now() - t0;
      }),
    );
    return { seconds: (Date.now() - started) / 1000, latencies };
  });
  await clientConnection.close();
  await connection.close();
  return result;
}

async function selfService(): Promise<{ seconds: number; latencies: number[] }> {
  const run = randomUUID().slice(0, 8);
  const config = loadConfig({
    ...process.env,
    DATABASE_URL: testDatabaseUrl(),
    KAFKA_TOPIC_NAMESPACE: `bench-${run}.`,
    TEMPORAL_TASK_QUEUE: `bench-${run}`,
    KAFKA_CONSUMER_GROUP: `bench-${run}`,
  });
  const ingress = await connectIngress(config, { clientId: 'bench' });
  const { worker, close } = await createWorker(config);
  const producer = ingress.kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const send = async (type: string, topic: string, data: Record<string, unknown>) => {
    const record = encodeCloudEvent({ specversion: '1.0', id: randomUUID(), source: 'urn:bench', type, data }, String(data.orgId));
    await producer.send({ topic, messages: [{ key: record.key, value: record.value, headers: record.headers }] });
  };

  const granted = new Map<string, number>();
  const watcher = ingress.kafka.consumer({ groupId: `bench-watch-${run}` });
  await watcher.connect();
  await watcher.subscribe({ topic: ingress.topics.dashboard, fromBeginning: true });
  await watcher.run({
    eachMessage: async ({ message }) => {
      const data = JSON.parse(message.value?.toString('utf8') ?? '{}') as { userId?: string };
      if (data.userId) granted.set(data.userId, Date.now());
    },
  });
  const consumer = await ingress.consume(config.KAFKA_CONSUMER_GROUP);
  const admin = (type: Command['type'], data: Record<string, unknown>) =>
    ingress.router.runAdminCommand({ commandId: randomUUID(), type, source: 'urn:bench', receivedAt: new Date().toISOString(), data } as Command);

  return worker.runUntil(async () => {
    // One org with one app that needs no approval, and one user per request.
    const orgId = `bench-org-${run}`;
    await admin('selfservice.directory.org-upserted.v1', { orgId, name: 'Bench', emailDomains: ['bench.example'] });
    const adminId = `${orgId}-admin`;
    const users = Array.from({ length: REQUESTS }, (_, index) => `${orgId}-u${index}`);
    for (const userId of [adminId, ...users]) {
      const adminRoles = userId === adminId ? ['SUPER_ADMIN'] : [];
      await admin('selfservice.directory.user-upserted.v1', { orgId, userId, email: `${userId}@bench.example`, status: 'ACTIVE', adminRoles });
    }
    const appId = `${orgId}-app`;
    await admin('selfservice.directory.org-app-upserted.v1', { orgId, appId, label: 'Bench app', signOnMode: 'SAML', status: 'ACTIVE' });
    await admin('selfservice.settings.update-requested.v1', { orgId, actorId: adminId, changes: { allowOrgManagedApps: true } });
    await admin('selfservice.app.self-service-configured.v1', { orgId, actorId: adminId, appId, config: { requestsEnabled: true, approvalRequired: false } });

    const sentAt = new Map<string, number>();
    const started = Date.now();
    await Promise.all(
      users.map(async (userId) => {
        sentAt.set(userId, Date.now());
        await send('selfservice.app.requested.v1', ingress.topics.userRequests, { orgId, userId, appId });
      }),
    );
    const deadline = Date.now() + 10 * 60_000;
    while (granted.size < REQUESTS && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    const seconds = (Date.now() - started) / 1000;
    if (granted.size < REQUESTS) throw new Error(`only ${granted.size} of ${REQUESTS} requests were granted within 10 minutes`);
    const latencies = users.map((userId) => (granted.get(userId) ?? NaN) - (sentAt.get(userId) ?? NaN));
    await consumer.disconnect();
    await watcher.disconnect();
    await producer.disconnect();
    return { seconds, latencies };
  }).finally(async () => {
    await close();
    await ingress.close();
  });
}

async function main(): Promise<void> {
  // Payloads are encrypted as in production; a run without a configured key uses a throwaway one.
  process.env.PAYLOAD_ENCRYPTION_KEY ??= randomBytes(32).toString('base64');
  execFileSync('bash', [path.join(root, 'services', 'stack.sh'), 'start'], { stdio: 'inherit' });
  execFileSync('npx', ['prisma', 'migrate', 'deploy'], { cwd: root, stdio: 'ignore', env: { ...process.env, MIGRATION_DATABASE_URL: testOwnerDatabaseUrl() } });
  const config = loadConfig();
  console.log(`benchmark: ${REQUESTS} requests, all sent at once, on this machine's Temporal dev server`);
  const bare = await baseline(config.TEMPORAL_ADDRESS, config.TEMPORAL_NAMESPACE);
  const ours = await selfService();
  const row = (name: string, r: { seconds: number; latencies: number[] }) =>
    `${name.padEnd(44)} ${(REQUESTS / r.seconds).toFixed(1).padStart(8)} /s   p50 ${String(percentile(r.latencies, 50)).padStart(6)} ms   p95 ${String(percentile(r.latencies, 95)).padStart(6)} ms`;
  console.log(row('baseline: bare Temporal workflow + no-op activity', bare));
  console.log(row('auto-granted request, Kafka to dashboard event', ours));
  console.log(
    `ratio (request / baseline): throughput ${(bare.seconds / ours.seconds).toFixed(2)}x, ` +
      `p50 latency ${(percentile(ours.latencies, 50) / percentile(bare.latencies, 50)).toFixed(1)}x, ` +
      `p95 latency ${(percentile(ours.latencies, 95) / percentile(bare.latencies, 95)).toFixed(1)}x`,
  );
}

main().catch((error: unknown) => {
  console.error('bench:', error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
