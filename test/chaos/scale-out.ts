import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import path from 'node:path';
import { Client as TemporalClient, Connection } from '@temporalio/client';
import { AssignerProtocol, Partitioners, type Admin, type Kafka, type PartitionMetadata, type Producer } from 'kafkajs';
import { Client as PgClient } from 'pg';
import { inboundTopics, topicsFor, type Topics } from '../../events/topics';
import { appRequestWorkflowId } from '../../rules/app-request';
import { loadConfig } from '../../workers/config';
import { auditRound, openWork, roundMails, type RoundFindings } from './audit';
import { BackendProcess, type BackendProcessName } from './backend-process';
import { CommandSender } from './command-sender';
import { EventLog, suiteKafka } from './event-log';
import { Mailbox } from './mailbox';
import { planOrg, planRound, seedOrg, seedRoundApps, type ChaosOrg } from './org';
import { PrivateStack } from './private-stack';
import { codeState, problemsOf, runSuite } from './report';
import { Approver, sendRequests, type TrackedRequest } from './request-load';

/**
 * The scale-out run (`npm run scale-out`): on a private stack of its own (.stack/scale-out), two
 * workers, two ingress processes (one consumer group) and two outbox relays share one load of app
 * requests (default 500, half of them approved through Kafka), spread over several orgs so that the
 * org-keyed commands fall on every inbound partition. Then the fault suite's audit counts what was
 * lost or doubled, and the Temporal histories, the consumer group and the outbox say which process did
 * what. Exit code 0: nothing lost or doubled and every process took a share; 1: not; 2: the run broke.
 *
 * Settings: SCALE_OUT_REQUESTS (default 500), SCALE_OUT_ORGS (default 10), SCALE_OUT_LOAD_SECONDS (the
 * requests are spread over this long, default 60), SCALE_OUT_PARTITIONS (KAFKA_TOPIC_PARTITIONS of the
 * private stack's topics, default 4), SCALE_OUT_KEEP_STACK=1 (leave the private stack running).
 */

const root = path.resolve(__dirname, '..', '..');
const REQUESTS = Number(process.env.SCALE_OUT_REQUESTS ?? 500);
const ORGS = Number(process.env.SCALE_OUT_ORGS ?? 10);
const LOAD_SECONDS = Number(process.env.SCALE_OUT_LOAD_SECONDS ?? 60);
const PARTITIONS = Number(process.env.SCALE_OUT_PARTITIONS ?? 4);
/** How many processes of each kind. */
const INSTANCES = 2;
/** The load is not done this long after its last request was sent: reported unfinished. */
const DEADLINE_MS = 15 * 60_000;
/** Quiet time before the audit, so late duplicates are seen (as in the fault suite). */
const SETTLE_MS = 5000;
const APP_ASSIGNED = 'selfservice.dashboard.app-assigned.v1';
const CONSUMER_GROUP = 'selfservice-ingress';
/** Rows the outbox relays marked published, with the relay's application_name: installed in the private database only. */
const PUBLICATION_TABLE = 'scale_out_publication';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (message: string) => console.log(`scale-out ${new Date().toISOString().slice(11, 19)} ${message}`);
const secondsSince = (from: number, to = Date.now()) => Number(((to - from) / 1000).toFixed(1));

/** One backend process of the run and what identifies it: its label, pids (Temporal identities), Kafka client id, database application name. */
interface Member {
  label: string;
  kind: BackendProcessName;
  process: BackendProcess;
  kafkaClientId: string;
  applicationName: string;
  pids: number[];
}

/** Every process in the process group `pgid` (tsx and the node process it runs): their pids are Temporal's identities `<pid>@<host>`. */
function processGroup(pgid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/**
 * Org ids whose key (the org id: commands are keyed by org) falls on each partition in turn, as the
 * client's default partitioner places them: the load is spread over every partition, and so over both
 * ingress processes, the way many orgs spread in production.
 */
function orgsOverPartitions(run: string, orgs: number, partitions: number, perOrg: number): ChaosOrg[] {
  const partitioner = Partitioners.DefaultPartitioner();
  const metadata: PartitionMetadata[] = Array.from({ length: partitions }, (_, partitionId) => ({ partitionErrorCode: 0, partitionId, leader: 0, replicas: [0], isr: [0] }));
  const planned: ChaosOrg[] = [];
  for (let index = 0; index < orgs; index++) {
    for (let attempt = 0; ; attempt++) {
      const org = planOrg(`${run}-${index}${attempt === 0 ? '' : `-${attempt}`}`, perOrg);
      const partition = partitioner({ topic: 'any', partitionMetadata: metadata, message: { key: org.orgId, value: null } });
      if (partition === index % partitions || attempt > 200) {
        planned.push(org);
        break;
      }
    }
  }
  return planned;
}

/** Test-only instrumentation of the private database: a row per publication the relays commit, with the relay's application_name. */
async function recordPublications(databaseUrl: string): Promise<void> {
  const db = new PgClient({ connectionString: databaseUrl });
  await db.connect();
  try {
    await db.query(`CREATE TABLE ${PUBLICATION_TABLE} ("eventId" text NOT NULL, "relay" text NOT NULL, "at" timestamptz NOT NULL DEFAULT clock_timestamp())`);
    await db.query(`CREATE FUNCTION ${PUBLICATION_TABLE}_record() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO ${PUBLICATION_TABLE} ("eventId", "relay") VALUES (NEW."id", current_setting('application_name'));
        RETURN NULL;
      END $$`);
    await db.query(`CREATE TRIGGER ${PUBLICATION_TABLE} AFTER UPDATE OF "publishedAt" ON "OutboxEvent"
      FOR EACH ROW WHEN (NEW."publishedAt" IS NOT NULL) EXECUTE FUNCTION ${PUBLICATION_TABLE}_record()`);
  } finally {
    await db.end();
  }
}

/** A consumer group's members now, with their client id and assigned partitions (`topic:partition`). */
async function describeGroup(admin: Admin, groupId: string): Promise<{ state: string; members: { memberId: string; clientId: string; partitions: string[] }[] }> {
  const { groups } = await admin.describeGroups([groupId]);
  const group = groups[0];
  return {
    state: group?.state ?? 'unknown',
    members: (group?.members ?? []).map((member) => {
      const decoded = member.memberAssignment.length > 0 ? AssignerProtocol.MemberAssignment.decode(member.memberAssignment) : null;
      const partitions = Object.entries(decoded?.assignment ?? {}).flatMap(([topic, list]) => list.map((partition) => `${topic}:${partition}`));
      return { memberId: member.memberId, clientId: member.clientId, partitions: partitions.sort() };
    }),
  };
}

/** Watches the ingress's consumer group every few seconds: which member owned which partitions, and every change (a rebalance). */
class GroupWatch {
  readonly changes: { at: number; state: string; owners: Record<string, string[]> }[] = [];
  private timer: NodeJS.Timeout | null = null;
  private admin: Admin | null = null;

  constructor(
    private readonly kafka: Kafka,
    private readonly groupId: string,
    private readonly labelOf: (clientId: string) => string,
  ) {}

  async start(): Promise<void> {
    this.admin = this.kafka.admin();
    await this.admin.connect();
    await this.sample();
    this.timer = setInterval(() => void this.sample().catch(() => undefined), 3000);
  }

  async sample(): Promise<void> {
    if (!this.admin) return;
    const group = await describeGroup(this.admin, this.groupId);
    const owners: Record<string, string[]> = {};
    for (const member of group.members) owners[this.labelOf(member.clientId)] = [...(owners[this.labelOf(member.clientId)] ?? []), ...member.partitions];
    const last = this.changes[this.changes.length - 1];
    if (!last || last.state !== group.state || JSON.stringify(last.owners) !== JSON.stringify(owners)) this.changes.push({ at: Date.now(), state: group.state, owners });
  }

  get current(): Record<string, string[]> {
    return this.changes[this.changes.length - 1]?.owners ?? {};
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.admin?.disconnect().catch(() => undefined);
  }
}

interface WorkerShare {
  label: string;
  pids: number[];
  /** Workflow tasks completed (WorkflowTaskCompleted's identity); local activities run inside them. */
  workflowTasks: number;
  /** Activities started (ActivityTaskStarted's identity): the emails. */
  activities: number;
  /** Request workflows of the load with at least one task of this worker. */
  workflows: number;
}

interface IngressShare {
  label: string;
  kafkaClientId: string;
  /** Inbound partitions the member owned at the end (`topic:partition`). */
  partitions: string[];
  /** Records consumed (committed offsets) on those partitions, seeding included. */
  recordsOnOwnedPartitions: number;
  /** Request workflows this ingress started (WorkflowExecutionStarted's identity). */
  workflowsStarted: number;
  /** Decision Updates accepted from this ingress (the Update request's identity). */
  updatesAccepted: number;
}

interface RelayShare {
  label: string;
  applicationName: string;
  /** Outbox rows this relay marked published (committed). */
  published: number;
  shardsPublished: number;
}

/** Who did what in Temporal, from the histories of the load's request workflows. */
async function temporalShares(env: NodeJS.ProcessEnv, workflowIds: string[], labelOfIdentity: (identity: string) => string) {
  const config = loadConfig(env);
  const connection = await Connection.connect({ address: config.TEMPORAL_ADDRESS });
  const tally = () => new Map<string, number>();
  const workflowTasks = tally();
  const activities = tally();
  const workflowsTouched = tally();
  const starts = tally();
  const updates = tally();
  const add = (map: Map<string, number>, identity: string | null | undefined) => {
    const label = labelOfIdentity(identity ?? '');
    map.set(label, (map.get(label) ?? 0) + 1);
  };
  const missing: string[] = [];
  try {
    const client = new TemporalClient({ connection, namespace: config.TEMPORAL_NAMESPACE });
    const queue = [...workflowIds];
    const fetchOne = async (): Promise<void> => {
      for (let workflowId = queue.shift(); workflowId !== undefined; workflowId = queue.shift()) {
        const history = await client.workflow
          .getHandle(workflowId)
          .fetchHistory()
          .catch(() => null);
        if (!history) {
          missing.push(workflowId);
          continue;
        }
        const touched = new Set<string>();
        for (const event of history.events ?? []) {
          if (event.workflowTaskCompletedEventAttributes) {
            add(workflowTasks, event.workflowTaskCompletedEventAttributes.identity);
            touched.add(labelOfIdentity(event.workflowTaskCompletedEventAttributes.identity ?? ''));
          }
          if (event.activityTaskStartedEventAttributes) add(activities, event.activityTaskStartedEventAttributes.identity);
          if (event.workflowExecutionStartedEventAttributes) add(starts, event.workflowExecutionStartedEventAttributes.identity);
          if (event.workflowExecutionUpdateAcceptedEventAttributes) add(updates, event.workflowExecutionUpdateAcceptedEventAttributes.acceptedRequest?.meta?.identity);
        }
        for (const label of touched) workflowsTouched.set(label, (workflowsTouched.get(label) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: 8 }, fetchOne));
  } finally {
    await connection.close();
  }
  return { workflowTasks, activities, workflowsTouched, starts, updates, missing };
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((cell, column) => cell.padEnd(widths[column]!)).join(' | ')} |`;
  return [line(header), `|${widths.map((width) => '-'.repeat(width + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

/** The sum of the per-org rounds' counts. */
function totalsOf(rounds: RoundFindings[]) {
  const sum = (pick: (round: RoundFindings) => number) => rounds.reduce((total, round) => total + pick(round), 0);
  return {
    requests: sum((r) => r.requests),
    approvalRequests: sum((r) => r.approvalRequests),
    commands: sum((r) => r.commands),
    lostResults: sum((r) => r.lostResults),
    doubledResults: sum((r) => r.doubledResults),
    grantedTwice: sum((r) => r.grantedTwice),
    grantedNever: sum((r) => r.grantedNever),
    emailsDoubled: sum((r) => r.emailsDoubled),
    emailsMissing: sum((r) => r.emailsMissing),
    emailCopiesSameMessageId: sum((r) => r.emailCopiesSameMessageId),
    decisionsResent: sum((r) => r.decisionsResent),
    commandSendRetries: sum((r) => r.commandSendRetries),
  };
}

async function main(): Promise<number> {
  if (REQUESTS < 1 || ORGS < 1 || REQUESTS % ORGS !== 0) throw new Error(`SCALE_OUT_REQUESTS (${REQUESTS}) must be a multiple of SCALE_OUT_ORGS (${ORGS})`);
  const startedAt = Date.now();
  const code = codeState(root);
  const run = randomUUID().slice(0, 6);
  const stack = await PrivateStack.create(root, 'scale-out');
  const notes: string[] = [];
  const phases: Record<string, number> = {};
  const cleanups: (() => Promise<unknown>)[] = [];
  const cleanup = async () => {
    for (const step of cleanups.splice(0).reverse()) await step().catch((error: unknown) => console.error('scale-out: cleanup:', error));
  };
  process.once('SIGINT', () => {
    log('interrupted: stopping the private stack');
    void cleanup().finally(() => process.exit(130));
  });

  try {
    log(`private stack in ${path.relative(root, stack.dir)}: Temporal ${stack.temporalAddress}, Kafka ${stack.kafkaBrokers}, PostgreSQL :${stack.ports.postgres}, Mailpit ${stack.mailpitUrl}`);
    await stack.fresh();
    if (process.env.SCALE_OUT_KEEP_STACK !== '1') cleanups.push(() => stack.stop());
    await stack.start();
    await stack.migrate();
    await recordPublications(stack.databaseUrl);
    phases.stackSeconds = secondsSince(startedAt);
    log(`services up and migrated in ${phases.stackSeconds} s`);

    // One deployment's settings, shared by every process; what tells the processes apart is only what
    // names them (Kafka client id, database application_name), as separate deployments would set it.
    const sharedEnv: NodeJS.ProcessEnv = {
      ...stack.env(),
      PAYLOAD_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      PAYLOAD_ENCRYPTION_KEY_ID: `scale-out-${run}`,
      PAYLOAD_DECRYPTION_KEYS: '',
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_TASK_QUEUE: 'self-service',
      KAFKA_TOPIC_NAMESPACE: '',
      KAFKA_CONSUMER_GROUP: CONSUMER_GROUP,
      KAFKA_TOPIC_PARTITIONS: String(PARTITIONS),
    };
    const members: Member[] = (['worker', 'ingress', 'relay'] as const).flatMap((kind) =>
      Array.from({ length: INSTANCES }, (_, index) => {
        const label = `${kind}-${index + 1}`;
        const applicationName = `scale-out-${label}`;
        const databaseUrl = `${stack.databaseUrl}?application_name=${applicationName}`;
        const env = { ...sharedEnv, KAFKA_CLIENT_ID: `selfservice-${label}`, DATABASE_URL: databaseUrl };
        return { label, kind, process: new BackendProcess(kind, root, stack.logDir, env, label), kafkaClientId: `selfservice-${label}`, applicationName, pids: [] };
      }),
    );
    cleanups.push(() => Promise.all(members.map((member) => member.process.stop())));
    const spawnAt = Date.now();
    // One relay first: it creates the topics (KAFKA_TOPIC_PARTITIONS) before six processes race to.
    const first = members.find((member) => member.kind === 'relay')!;
    await first.process.start();
    await Promise.all(members.filter((member) => member !== first).map((member) => member.process.start()));
    for (const member of members) member.pids = member.process.pid === undefined ? [] : processGroup(member.process.pid);
    phases.processesReadySeconds = secondsSince(spawnAt);
    log(`${members.length} processes ready in ${phases.processesReadySeconds} s: ${members.map((m) => `${m.label} (pids ${m.pids.join('/')})`).join(', ')}; logs in ${path.relative(root, stack.logDir)}`);

    const host = hostname();
    const labelOfIdentity = (identity: string) => {
      const [pid, at] = identity.split('@');
      const member = at === host ? members.find((m) => m.pids.includes(Number(pid))) : undefined;
      return member?.label ?? (identity || 'unknown');
    };
    const labelOfClientId = (clientId: string) => members.find((m) => clientId.startsWith(m.kafkaClientId))?.label ?? clientId;

    const topics: Topics = topicsFor('');
    const kafka = suiteKafka(stack.kafkaBrokers, 'scale-out-suite');
    const admin = kafka.admin();
    await admin.connect();
    cleanups.push(() => admin.disconnect());
    const metadata = await admin.fetchTopicMetadata({ topics: inboundTopics.map((name) => topics[name]) });
    const partitionCounts = Object.fromEntries(metadata.topics.map((topic) => [topic.name, topic.partitions.length]));
    const fewest = Math.min(...Object.values(partitionCounts));
    if (fewest < INSTANCES) throw new Error(`inbound topics have ${fewest} partition(s), fewer than the ${INSTANCES} ingress processes: ${JSON.stringify(partitionCounts)}`);

    const events = new EventLog(kafka, topics);
    await events.start();
    cleanups.push(() => events.stop());
    const producer: Producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    cleanups.push(() => producer.disconnect());
    const commands = new CommandSender(producer, topics, events);
    const approver = new Approver(commands, events);
    const mailbox = new Mailbox(stack.mailpitUrl);
    const group = new GroupWatch(kafka, CONSUMER_GROUP, labelOfClientId);
    await group.start();
    cleanups.push(() => group.stop());

    const perOrg = REQUESTS / ORGS;
    const orgs = orgsOverPartitions(run, ORGS, fewest, perOrg);
    const rounds = orgs.map((org) => ({ org, apps: planRound(org, `scale-out-${org.orgId}`), requests: [] as TrackedRequest[] }));
    const seedStarted = Date.now();
    await Promise.all(rounds.map(async ({ org, apps }) => {
      await seedOrg(commands, org);
      await seedRoundApps(commands, org, apps);
    }));
    phases.seedSeconds = secondsSince(seedStarted);
    log(`seeded ${ORGS} orgs (${REQUESTS + 2 * ORGS} users, ${2 * ORGS} apps) through Kafka in ${phases.seedSeconds} s`);

    const loadStartedAt = Date.now();
    log(`${REQUESTS} requests (${ORGS} orgs x ${perOrg}, every other one needing an approval) over ${LOAD_SECONDS} s`);
    await Promise.all(rounds.map(({ org, apps, requests }) => sendRequests(commands, approver, org, apps, perOrg / LOAD_SECONDS, requests)));
    const loadSentAt = Date.now();
    phases.sendSeconds = secondsSince(loadStartedAt, loadSentAt);

    // Every request granted, every command answered, every notice received.
    const expectedMails = rounds.reduce((sum, round) => sum + round.requests.length + round.requests.filter((r) => r.needsApproval).length, 0);
    let completedAt: number | null = null;
    let lastReport = 0;
    while (Date.now() < loadSentAt + DEADLINE_MS) {
      const open = rounds.reduce((sum, round) => sum + openWork(round, commands, events, Number.MAX_SAFE_INTEGER), 0);
      let mails = -1;
      if (open === 0) {
        const received = await mailbox.refresh().catch(() => []);
        mails = rounds.reduce((sum, round) => sum + roundMails(received, round.org, round.apps).length, 0);
        if (mails >= expectedMails) {
          completedAt = Date.now();
          break;
        }
      }
      if (Date.now() - lastReport > 15_000) {
        lastReport = Date.now();
        const granted = new Set(events.records.filter((r) => r.type === APP_ASSIGNED && rounds.some((round) => round.org.orgId === r.data.orgId)).map((r) => r.data.requestId)).size;
        log(`waiting: ${granted}/${REQUESTS} granted, ${open} open${mails >= 0 ? `, ${mails}/${expectedMails} emails` : ''}`);
      }
      await sleep(open === 0 ? 1000 : 500);
    }
    phases.loadSeconds = completedAt ? secondsSince(loadStartedAt, completedAt) : -1;
    log(completedAt ? `all done ${phases.loadSeconds} s after the first request` : `NOT done ${DEADLINE_MS / 1000} s after the last request was sent`);

    await sleep(SETTLE_MS);
    await group.sample().catch(() => undefined);
    const auditStarted = Date.now();
    if (approver.errors.length > 0) notes.push(...approver.errors.map((error) => `approver: ${error}`));
    if (events.restarts > 0) notes.push(`the suite's event-log consumer was replaced ${events.restarts} time(s)`);

    // The fault suite's audit, one round per org; no fault, so no window: it opens at the first request.
    const mails = await mailbox.refresh();
    const db = new PgClient({ connectionString: stack.databaseUrl });
    await db.connect();
    const findings: RoundFindings[] = [];
    let relayRows: { relay: string; published: number; shards: number }[] = [];
    let publishedTwice = 0;
    let unpublished = 0;
    let outboxRows = 0;
    let outboxIds = new Set<string>();
    try {
      for (const round of rounds) {
        const window = { startedAt: loadStartedAt, endedAt: loadStartedAt, notes: [] };
        findings.push(
          await auditRound(
            { org: round.org, apps: round.apps, fault: round.org.orgId, description: `${round.requests.length} requests of org ${round.org.orgId}`, window, requests: round.requests, workflowStarts: new Map(), loadStartedAt, completedAt },
            commands,
            events,
            db,
            mails,
          ),
        );
      }
      const byRelay = await db.query<{ relay: string; published: string; shards: string }>(
        `SELECT p."relay", count(*) AS published, count(DISTINCT o."shard") AS shards FROM ${PUBLICATION_TABLE} p JOIN "OutboxEvent" o ON o."id" = p."eventId" GROUP BY 1 ORDER BY 1`,
      );
      relayRows = byRelay.rows.map((row) => ({ relay: row.relay, published: Number(row.published), shards: Number(row.shards) }));
      publishedTwice = Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM (SELECT "eventId" FROM ${PUBLICATION_TABLE} GROUP BY 1 HAVING count(*) > 1) t`)).rows[0]?.n ?? 0);
      unpublished = Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM "OutboxEvent" WHERE "publishedAt" IS NULL`)).rows[0]?.n ?? 0);
      const rows = await db.query<{ id: string }>(`SELECT "id" FROM "OutboxEvent" WHERE "topic" = ANY($1)`, [['commandResults', 'accessRequests', 'dashboard']]);
      outboxIds = new Set(rows.rows.map((row) => row.id));
      outboxRows = Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM "OutboxEvent"')).rows[0]?.n ?? 0);
    } finally {
      await db.end();
    }

    // Everything the consumers saw, by CloudEvent id: copies of one id are the documented at-least-once
    // (accepted, as by the fault suite); two ids for one effect are what the audit above fails.
    const copies: Record<string, number> = {};
    const seenIds = new Map<string, number>();
    for (const record of events.records) seenIds.set(`${record.topic}|${record.id}`, (seenIds.get(`${record.topic}|${record.id}`) ?? 0) + 1);
    for (const [key, n] of seenIds) if (n > 1) copies[key.split('|')[0]!] = (copies[key.split('|')[0]!] ?? 0) + n - 1;
    const seenEventIds = new Set(events.records.map((record) => record.id));
    const outboxNotSeen = outboxIds.size > 0 ? [...outboxIds].filter((id) => !seenEventIds.has(id)).length : null;

    // Every command of the run, seeding included: exactly one result id each.
    let seedLost = 0;
    let seedDoubled = 0;
    for (const command of commands.sent.values()) {
      if (command.round !== 'seed') continue;
      const results = commands.resultsOf(command.id);
      if (results.length === 0) seedLost += 1;
      else if (new Set(results.map((r) => r.id)).size > 1 || new Set(results.map((r) => r.type)).size > 1) seedDoubled += 1;
    }

    // Who did what.
    const workflowIds = rounds.flatMap((round) => round.requests.map((request) => appRequestWorkflowId(request.requestId)));
    const temporal = await temporalShares(sharedEnv, workflowIds, labelOfIdentity);
    const offsets = await admin.fetchOffsets({ groupId: CONSUMER_GROUP, topics: inboundTopics.map((name) => topics[name]) });
    const committed = new Map<string, number>();
    for (const topic of offsets) for (const partition of topic.partitions) committed.set(`${topic.topic}:${partition.partition}`, Math.max(0, Number(partition.offset)));
    const owners = group.current;
    const workers: WorkerShare[] = members
      .filter((m) => m.kind === 'worker')
      .map((m) => ({ label: m.label, pids: m.pids, workflowTasks: temporal.workflowTasks.get(m.label) ?? 0, activities: temporal.activities.get(m.label) ?? 0, workflows: temporal.workflowsTouched.get(m.label) ?? 0 }));
    const ingresses: IngressShare[] = members
      .filter((m) => m.kind === 'ingress')
      .map((m) => ({
        label: m.label,
        kafkaClientId: `${m.kafkaClientId}-ingress`,
        partitions: owners[m.label] ?? [],
        recordsOnOwnedPartitions: (owners[m.label] ?? []).reduce((sum, partition) => sum + (committed.get(partition) ?? 0), 0),
        workflowsStarted: temporal.starts.get(m.label) ?? 0,
        updatesAccepted: temporal.updates.get(m.label) ?? 0,
      }));
    const relays: RelayShare[] = members
      .filter((m) => m.kind === 'relay')
      .map((m) => {
        const row = relayRows.find((r) => r.relay === m.applicationName);
        return { label: m.label, applicationName: m.applicationName, published: row?.published ?? 0, shardsPublished: row?.shards ?? 0 };
      });
    const strangers = [
      ...[...temporal.workflowTasks.keys(), ...temporal.activities.keys(), ...temporal.starts.keys(), ...temporal.updates.keys()].filter((label) => !members.some((m) => m.label === label)),
      ...relayRows.map((r) => r.relay).filter((relay) => !members.some((m) => m.applicationName === relay)),
    ];
    if (strangers.length > 0) notes.push(`work done by identities not of this run's processes: ${[...new Set(strangers)].join(', ')}`);
    if (temporal.missing.length > 0) notes.push(`${temporal.missing.length} request workflow(s) without a history: ${temporal.missing.slice(0, 5).join(', ')}`);
    const rebalances = group.changes.length - 1;
    phases.auditSeconds = secondsSince(auditStarted);

    // Verdict.
    const judged = findings.map((round) => ({ ...round, problems: problemsOf({ ...round, pendingAtFaultEnd: 0, handoverSeconds: null }) }));
    const totals = totalsOf(findings);
    const problems = judged.flatMap((round) => round.problems.map((problem) => `${round.fault}: ${problem}`));
    if (totals.requests < REQUESTS) problems.push(`only ${totals.requests} of ${REQUESTS} requests were sent`);
    if (!completedAt) problems.push(`the load was not done ${DEADLINE_MS / 1000} s after its last request`);
    if (seedLost > 0 || seedDoubled > 0) problems.push(`seeding: ${seedLost} command(s) without a result, ${seedDoubled} with two different results`);
    if (publishedTwice > 0) problems.push(`${publishedTwice} outbox row(s) marked published by two relay transactions (the shard locks failed)`);
    if (unpublished > 0) problems.push(`${unpublished} outbox row(s) never published`);
    if (outboxNotSeen) problems.push(`${outboxNotSeen} published result/access-request/dashboard event(s) never seen by a consumer`);
    for (const worker of workers) if (worker.workflowTasks === 0) problems.push(`${worker.label} ran no workflow task`);
    for (const ingress of ingresses) {
      if (ingress.partitions.length === 0) problems.push(`${ingress.label} owned no inbound partition at the end`);
      if (ingress.workflowsStarted + ingress.updatesAccepted === 0) problems.push(`${ingress.label} started no workflow and sent no Update`);
    }
    for (const relay of relays) if (relay.published === 0) problems.push(`${relay.label} published nothing`);
    const passed = problems.length === 0;

    const pct = (part: number, whole: number) => (whole === 0 ? '-' : `${((100 * part) / whole).toFixed(0)}%`);
    const sumOf = <T>(items: T[], pick: (item: T) => number) => items.reduce((sum, item) => sum + pick(item), 0);
    console.log('');
    console.log(
      table(
        ['requests', 'commands', 'lost results', 'doubled results', 'granted twice', 'granted never', 'emails doubled', 'emails missing', 'load s', 'requests/s'],
        [[
          `${totals.requests} (${totals.approvalRequests} appr.)`,
          String(totals.commands),
          String(totals.lostResults),
          String(totals.doubledResults),
          String(totals.grantedTwice),
          String(totals.grantedNever),
          String(totals.emailsDoubled),
          String(totals.emailsMissing),
          completedAt ? String(phases.loadSeconds) : 'unfinished',
          completedAt ? (totals.requests / phases.loadSeconds!).toFixed(1) : '-',
        ]],
      ),
    );
    console.log('');
    const workflowTaskSum = sumOf(workers, (w) => w.workflowTasks);
    const activitySum = sumOf(workers, (w) => w.activities);
    const startSum = sumOf(ingresses, (i) => i.workflowsStarted);
    const updateSum = sumOf(ingresses, (i) => i.updatesAccepted);
    const relaySum = sumOf(relays, (r) => r.published);
    console.log(
      table(
        ['process', 'share'],
        [
          ...workers.map((w) => [w.label, `${w.workflowTasks} workflow tasks (${pct(w.workflowTasks, workflowTaskSum)}), ${w.activities} activities (${pct(w.activities, activitySum)}), in ${w.workflows} of ${workflowIds.length} workflows`]),
          ...ingresses.map((i) => [
            i.label,
            `${i.workflowsStarted} workflows started (${pct(i.workflowsStarted, startSum)}), ${i.updatesAccepted} Updates (${pct(i.updatesAccepted, updateSum)}); partitions ${i.partitions.join(' ') || 'none'} (${i.recordsOnOwnedPartitions} records)`,
          ]),
          ...relays.map((r) => [r.label, `${r.published} events published (${pct(r.published, relaySum)}), from ${r.shardsPublished} of 16 shards`]),
        ],
      ),
    );
    console.log('');
    const extras = [
      `consumer group: ${rebalances} change(s) of its assignment after the first sample`,
      `outbox: ${outboxRows} rows, ${unpublished} unpublished, ${publishedTwice} published twice; consumers saw ${Object.values(copies).reduce((a, b) => a + b, 0)} same-id copies (at-least-once redeliveries, accepted)${Object.keys(copies).length > 0 ? `: ${JSON.stringify(copies)}` : ''}`,
      `emails: ${totals.emailCopiesSameMessageId} copies with a Message-ID already received`,
      totals.decisionsResent > 0 ? `${totals.decisionsResent} decisions refused and sent again (${[...new Set(findings.flatMap((r) => Object.entries(r.resentCodes).map(([c]) => c)))].join(', ')})` : '',
      `phases: stack ${phases.stackSeconds} s, processes ${phases.processesReadySeconds} s, seed ${phases.seedSeconds} s, sending ${phases.sendSeconds} s, load ${completedAt ? `${phases.loadSeconds} s` : 'unfinished'}, audit ${phases.auditSeconds} s`,
    ].filter(Boolean);
    for (const line of extras) console.log(line);
    for (const problem of problems) console.log(`PROBLEM: ${problem}`);
    for (const round of judged) for (const example of round.examples) console.log(`    ${round.fault}: ${example}`);
    for (const note of notes) console.log(`note: ${note}`);

    const codeAtEnd = codeState(root);
    if (codeAtEnd.diffSha1 !== code.diffSha1) notes.push(`the backend code changed during the run (uncommitted diff ${code.diffSha1} -> ${codeAtEnd.diffSha1}); the processes ran the code of their start`);
    const report = {
      startedAt: new Date(startedAt).toISOString(),
      finishedAt: new Date().toISOString(),
      seconds: secondsSince(startedAt),
      passed,
      problems,
      code,
      stack: { dir: path.relative(root, stack.dir), temporal: stack.temporalAddress, kafka: stack.kafkaBrokers, postgres: `127.0.0.1:${stack.ports.postgres}`, mailpit: stack.mailpitUrl },
      settings: { requests: REQUESTS, orgs: ORGS, loadSeconds: LOAD_SECONDS, partitions: partitionCounts, consumerGroup: CONSUMER_GROUP, processes: members.map((m) => ({ label: m.label, pids: m.pids, kafkaClientId: m.kafkaClientId, applicationName: m.applicationName, log: path.relative(root, m.process.logFile) })) },
      phases,
      totals: { ...totals, seedCommands: [...commands.sent.values()].filter((c) => c.round === 'seed').length, seedLost, seedDoubled, requestsPerSecond: completedAt ? Number((totals.requests / phases.loadSeconds!).toFixed(2)) : null },
      share: { workers, ingresses, relays, consumerGroupChanges: group.changes.map((change) => ({ ...change, at: new Date(change.at).toISOString() })) },
      outbox: { rows: outboxRows, unpublished, publishedTwice, consumerCopiesByTopic: copies, resultAndDashboardRowsNotSeen: outboxNotSeen },
      rounds: judged,
      notes,
    };
    const file = path.join(root, '.stack', 'scale-out-report.json');
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
    log(`${passed ? 'PASSED' : 'FAILED'} in ${report.seconds.toFixed(0)} s; report in ${path.relative(root, file)}`);
    return passed ? 0 : 1;
  } finally {
    await cleanup();
  }
}

runSuite('scale-out', main);
