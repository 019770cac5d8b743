import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Partitioners, type Consumer, type Producer } from 'kafkajs';
import { KafkaEventPublisher } from '../../events/publisher';
import { startOutboxRelay, type OutboxRelay } from '../../workers/outbox-relay';
import { connectIngress, type IngressRuntime } from '../../workers/runtime';
import type { TestBackend } from '../support/backend';
import { CommandClient, seedOrg } from '../support/commands';
import { resultFor, sendCommand, TopicProbe } from '../support/kafka-probe';
import { mailsTo } from '../support/mailpit';
import { testConfig, TEST_PAYLOAD_ENCRYPTION_KEY, uniqueId } from '../support/test-config';

/**
 * SIGTERM to the real ingress and worker processes in the middle of their work (README "Operations"):
 * each exits 0 within its grace period, a new one finishes the rest, every command has exactly one
 * result, nothing is done twice, and the records handed over again are counted (none, when the stop
 * was clean: the offsets of what was handled were committed before the consumer left its group).
 */

const root = path.resolve(__dirname, '..', '..');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const GRACE_SECONDS = 20;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** One process of the backend as a child (tsx, its own process group), with its ops port. */
class ChildBackendProcess {
  private child: ChildProcess | null = null;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> = Promise.resolve({ code: null, signal: null });
  logFile = '';
  private incarnation = 0;

  constructor(
    private readonly entry: string,
    private readonly env: NodeJS.ProcessEnv,
    private readonly logDir: string,
    readonly opsPort: number,
  ) {}

  async start(timeoutMs = 180_000): Promise<void> {
    this.incarnation += 1;
    this.logFile = path.join(this.logDir, `${path.basename(this.entry, '.ts')}-${this.incarnation}.log`);
    const fd = openSync(this.logFile, 'a');
    // One node process with tsx as its loader (not the tsx CLI, whose signal relay re-sends SIGTERM and
    // then SIGKILLs a child that has not acknowledged it within 30 ms): a signal reaches the process itself.
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, this.entry)], {
      cwd: root,
      env: this.env,
      detached: true,
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    this.child = child;
    let exited = false;
    this.exit = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        exited = true;
        resolve({ code, signal });
      }),
    );
    const deadline = Date.now() + timeoutMs;
    // Ready: its /readyz says so (the ingress: in its group, database reachable; the worker: RUNNING).
    while (Date.now() < deadline && !exited) {
      if ((await this.readyz().catch(() => 0)) === 200) return;
      await sleep(200);
    }
    throw new Error(`${this.entry} did not become ready; log:\n${this.log().split('\n').slice(-30).join('\n')}`);
  }

  log(): string {
    return readFileSync(this.logFile, 'utf8');
  }

  /** SIGTERM to the node process that does the work, as systemd or Kubernetes send it. */
  terminate(): void {
    this.child?.kill('SIGTERM');
  }

  async metrics(): Promise<string> {
    return (await fetch(`http://127.0.0.1:${this.opsPort}/metrics`)).text();
  }

  async readyz(): Promise<number> {
    return (await fetch(`http://127.0.0.1:${this.opsPort}/readyz`)).status;
  }

  async kill(): Promise<void> {
    const pid = this.child?.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone
    }
    await this.exit;
  }
}

/** The value of a counter sample in Prometheus text, 0 when absent. */
function sample(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((row) => row.startsWith(`${name}{`) && row.includes(labels));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

describe('graceful shutdown on SIGTERM (real processes, real services)', () => {
  const config = testConfig();
  let logDir: string;
  let env: NodeJS.ProcessEnv;
  let ingress: IngressRuntime;
  let relay: OutboxRelay;
  let relayPublisher: KafkaEventPublisher;
  let producer: Producer;
  let probe: TopicProbe;
  const children: ChildBackendProcess[] = [];

  beforeAll(async () => {
    logDir = mkdtempSync(path.join(tmpdir(), 'graceful-shutdown-'));
    env = {
      ...process.env,
      DATABASE_URL: config.DATABASE_URL,
      KAFKA_TOPIC_NAMESPACE: config.KAFKA_TOPIC_NAMESPACE,
      TEMPORAL_TASK_QUEUE: config.TEMPORAL_TASK_QUEUE,
      KAFKA_CONSUMER_GROUP: config.KAFKA_CONSUMER_GROUP,
      PAYLOAD_ENCRYPTION_KEY: TEST_PAYLOAD_ENCRYPTION_KEY,
      PAYLOAD_ENCRYPTION_KEY_ID: 'test-key',
      SHUTDOWN_GRACE_SECONDS: String(GRACE_SECONDS),
      RELAY_OPS_PORT: '0',
    };
    // The test's side: a client of Temporal and Kafka, the outbox relay, a producer and a probe on the results.
    ingress = await connectIngress(config, { clientId: 'graceful-shutdown-test' });
    relayPublisher = await KafkaEventPublisher.connect(ingress.kafka, ingress.topics);
    relay = startOutboxRelay({ databaseUrl: config.DATABASE_URL, namespace: config.KAFKA_TOPIC_NAMESPACE, publisher: relayPublisher, log: (line) => console.warn(`relay: ${line}`) });
    producer = ingress.kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    probe = await TopicProbe.start(ingress.kafka, [ingress.topics.commandResults]);
  }, 120_000);

  afterAll(async () => {
    for (const child of children) await child.kill();
    await probe?.stop();
    await producer?.disconnect();
    await relay?.stop();
    await relayPublisher?.disconnect();
    await ingress?.close();
    rmSync(logDir, { recursive: true, force: true });
  });

  /** Waits until each command id has a result on the results topic, then returns how many each has. */
  async function resultsOf(commandIds: readonly string[], timeoutMs: number): Promise<Map<string, number>> {
    const wanted = new Set(commandIds);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const counts = new Map<string, number>();
      for (const record of probe.records) {
        const id = record.data.commandId as string | undefined;
        if (id && wanted.has(id) && record.type?.startsWith('selfservice.command.')) counts.set(id, (counts.get(id) ?? 0) + 1);
      }
      if (counts.size === wanted.size || Date.now() > deadline) return counts;
      await sleep(250);
    }
  }

  test('the ingress, stopped mid-burst, finishes its batch, commits and leaves; the next one takes the rest: one result each, nothing handled twice', async () => {
    // The worker is not needed: directory commands are applied by the ingress itself.
    const ingressOps = await freePort();
    const first = new ChildBackendProcess('workers/kafka-ingress.ts', { ...env, INGRESS_OPS_PORT: String(ingressOps), WORKER_OPS_PORT: '0' }, logDir, ingressOps);
    children.push(first);
    await first.start();
    expect(await first.readyz()).toBe(200);

    // 300 user upserts (several orgs, so all partitions), sent in 30 slices over about 3 s; SIGTERM after the 12th.
    const orgs = Array.from({ length: 6 }, () => uniqueId('org'));
    const ids: string[] = [];
    let exitedAt = 0;
    let signalledAt = 0;
    for (let slice = 0; slice < 30; slice += 1) {
      await Promise.all(
        Array.from({ length: 10 }, async (_, index) => {
          const n = slice * 10 + index;
          const orgId = orgs[n % orgs.length]!;
          ids.push(
            await sendCommand(producer, ingress.topics.directory, 'selfservice.directory.user-upserted.v1', {
              orgId,
              userId: `u-${n}`,
              email: `u-${n}@${orgId}.example`,
              displayName: `User ${n}`,
              status: 'ACTIVE',
              adminRoles: [],
            }),
          );
        }),
      );
      if (slice === 11) {
        signalledAt = Date.now();
        first.terminate();
        void first.exit.then(() => (exitedAt = Date.now()));
      }
      await sleep(100);
    }

    const { code } = await first.exit;
    expect(code).toBe(0);
    expect(exitedAt - signalledAt).toBeLessThan(GRACE_SECONDS * 1000);
    expect(first.log()).toContain('stopped cleanly');
    const handledByFirst = await ingress.db.processedCommand.count({ where: { commandId: { in: ids } } });
    // Stopped in the middle: some were handled, the rest waited for the next member.
    expect(handledByFirst).toBeGreaterThan(0);
    expect(handledByFirst).toBeLessThan(ids.length);

    const second = new ChildBackendProcess('workers/kafka-ingress.ts', { ...env, INGRESS_OPS_PORT: String(ingressOps), WORKER_OPS_PORT: '0' }, logDir, ingressOps);
    children.push(second);
    await second.start();
    const counts = await resultsOf(ids, 90_000);
    await sleep(2000); // a doubled result would come right behind the first
    const again = await resultsOf(ids, 0);
    expect(counts.size).toBe(ids.length);
    expect([...again.values()].filter((count) => count !== 1)).toEqual([]);
    await expect(ingress.db.processedCommand.count({ where: { commandId: { in: ids } } })).resolves.toBe(ids.length);

    // Redelivery: the second ingress claimed no id the first had handled (each re-handled record is a repeat claim).
    const metrics = await second.metrics();
    const repeats = sample(metrics, 'selfservice_ingress_claims_total', 'result="repeat"');
    const fresh = sample(metrics, 'selfservice_ingress_claims_total', 'result="new"');
    console.log(`graceful-shutdown: first ingress handled ${handledByFirst} of ${ids.length}; the second claimed ${fresh} new, ${repeats} repeated`);
    expect(repeats).toBe(0);
    expect(fresh).toBe(ids.length - handledByFirst);
    expect(metrics).toMatch(/^selfservice_ingress_group_joined\{process="ingress"\} 1$/m);

    second.terminate();
    expect((await second.exit).code).toBe(0);
  }, 300_000);

  test('the worker, stopped while activities are in flight, finishes them and exits 0; a new worker completes the rest, nothing doubled', async () => {
    // The ingress runs in this process (the worker is the process under test).
    let consumer: Consumer | null = await ingress.consume(config.KAFKA_CONSUMER_GROUP);
    const workerOps = await freePort();
    const workerEnv = { ...env, WORKER_OPS_PORT: String(workerOps), INGRESS_OPS_PORT: '0' };
    const first = new ChildBackendProcess('workers/temporal-worker.ts', workerEnv, logDir, workerOps);
    children.push(first);
    try {
      await first.start();
      expect(await first.readyz()).toBe(200);
      const commands = new CommandClient({ producer, topics: ingress.topics } as unknown as TestBackend, probe);
      const users = Array.from({ length: 24 }, (_, index) => `user${index}`);
      const org = await seedOrg(commands, { users });
      const appId = uniqueId('app');
      await commands.directory('org-app-upserted', { orgId: org.orgId, appId, label: `Wiki ${appId}`, signOnMode: 'SAML', status: 'ACTIVE' });
      await commands.accepted('adminCommands', 'selfservice.app.self-service-configured.v1', {
        orgId: org.orgId,
        actorId: org.superAdminId,
        appId,
        config: { requestsEnabled: true, approvalRequired: false },
      });

      // 24 auto-granted requests at once; SIGTERM once the first is granted (the others are in flight).
      const ids = await Promise.all(users.map((name) => sendCommand(producer, ingress.topics.userRequests, 'selfservice.app.requested.v1', { orgId: org.orgId, userId: org.user(name), appId })));
      await probe.waitFor(resultFor(ids[0]!), 'a first result', 60_000);
      const metricsBefore = await first.metrics();
      expect(metricsBefore).toContain('selfservice_worker_running{process="worker"} 1');
      expect(metricsBefore).toMatch(/^temporal_/m); // the SDK's own metrics, appended
      const grantedBefore = await ingress.db.appRequest.count({ where: { orgId: org.orgId, status: 'APPROVED' } });
      const signalledAt = Date.now();
      first.terminate();
      const { code } = await first.exit;
      expect(code).toBe(0);
      expect(Date.now() - signalledAt).toBeLessThan(GRACE_SECONDS * 1000);
      expect(first.log()).toContain('stopped cleanly');
      const grantedByFirst = await ingress.db.appRequest.count({ where: { orgId: org.orgId, status: 'APPROVED' } });
      console.log(`graceful-shutdown: ${grantedBefore} of ${ids.length} requests granted at SIGTERM, ${grantedByFirst} when the first worker had exited`);

      const second = new ChildBackendProcess('workers/temporal-worker.ts', workerEnv, logDir, workerOps);
      children.push(second);
      await second.start();
      const counts = await resultsOf(ids, 120_000);
      expect(counts.size).toBe(ids.length);
      const requests = await ingress.db.appRequest.findMany({ where: { orgId: org.orgId } });
      expect(requests).toHaveLength(ids.length);
      // Every request ends granted, each with the same history (a step done twice would show as an extra event).
      const deadline = Date.now() + 120_000;
      let statuses: string[] = [];
      while (Date.now() < deadline) {
        statuses = (await ingress.db.appRequest.findMany({ where: { orgId: org.orgId } })).map((request) => request.status);
        if (statuses.every((status) => status === 'APPROVED')) break;
        await sleep(500);
      }
      expect(new Set(statuses)).toEqual(new Set(['APPROVED']));
      const histories = await Promise.all(
        requests.map(async (request) =>
          (await ingress.db.appRequestEvent.findMany({ where: { requestId: request.id }, orderBy: { sequence: 'asc' } })).map((event) => event.name).join(','),
        ),
      );
      expect(new Set(histories).size).toBe(1);
      // One email per requester, none twice.
      await sleep(3000);
      for (const name of users) {
        const mails = await mailsTo(org.email(name));
        expect({ name, mails: mails.length }).toEqual({ name, mails: 1 });
      }
      await sleep(2000);
      const again = await resultsOf(ids, 0);
      expect([...again.values()].filter((count) => count !== 1)).toEqual([]);

      second.terminate();
      expect((await second.exit).code).toBe(0);
    } finally {
      await consumer?.disconnect();
      consumer = null;
    }
  }, 420_000);
});
