import { randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import { Partitioners, type Producer } from 'kafkajs';
import { Client as PgClient } from 'pg';
import { topicsFor } from '../../events/topics';
import { SmtpOutageSwitch } from '../support/smtp-outage';
import { auditRound, openWork, roundMails, type RoundFindings, type RoundInput } from './audit';
import { BackendProcess } from './backend-process';
import { CommandSender } from './command-sender';
import { EventLog, suiteKafka } from './event-log';
import { allFaults } from './faults';
import { requestWorkflowStarts } from './handover';
import { Mailbox } from './mailbox';
import { planOrg, planRound, seedOrg, seedRoundApps, type ChaosOrg, type RoundApps } from './org';
import { PrivateStack } from './private-stack';
import { codeState as codeStateOf, formatTable, problemsOf, RESUME_LIMIT_SECONDS, runSuite, writeReport, type ChaosReport } from './report';
import { Approver, sendRequests, type TrackedRequest } from './request-load';

/**
 * The fault suite (`npm run chaos [-- <fault>...]`): on a private copy of the stack, for each fault
 * one round of app requests (half of them approved through Kafka) during which the fault happens;
 * then counts what was lost, doubled or slow. Exit code 1 when anything was; 2 when the suite broke.
 *
 * Settings: CHAOS_REQUESTS (requests per round, default 100: 600 in six rounds), CHAOS_LOAD_SECONDS
 * (how long the requests of a round are spread over, default 12), CHAOS_KEEP_STACK=1 (leave the private
 * stack running afterwards).
 */

const root = path.resolve(__dirname, '..', '..');
const REQUESTS = Number(process.env.CHAOS_REQUESTS ?? 100);
/** The requests of a round are spread over this long, so the fault falls in the middle of the load. */
const LOAD_SECONDS = Number(process.env.CHAOS_LOAD_SECONDS ?? 12);
const RATE = REQUESTS / LOAD_SECONDS;
/** The fault begins this long after the first request of its round. */
const FAULT_AFTER_MS = 4000;
/** A round that is not done this long after its fault ended is left unfinished (and reported). */
const ROUND_DEADLINE_MS = 180_000;
/** Quiet time before the audit, so late duplicates are seen. */
const SETTLE_MS = 5000;
const APP_ASSIGNED = 'selfservice.dashboard.app-assigned.v1';

const codeState = () => codeStateOf(root);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (message: string) => console.log(`chaos ${new Date().toISOString().slice(11, 19)} ${message}`);

/** Waits until every request of the round is granted, every command has a result and every notice arrived. */
async function waitForRound(
  org: ChaosOrg,
  apps: RoundApps,
  requests: TrackedRequest[],
  commands: CommandSender,
  events: EventLog,
  mailbox: Mailbox,
  deadline: number,
): Promise<number | null> {
  const expectedMails = requests.length + requests.filter((request) => request.needsApproval).length;
  let lastReport = 0;
  while (Date.now() < deadline) {
    const open = openWork({ apps, requests }, commands, events, Number.MAX_SAFE_INTEGER);
    let mails = -1;
    if (open === 0) {
      const received = await mailbox.refresh().catch(() => []);
      mails = roundMails(received, org, apps).length;
      if (mails >= expectedMails) return Date.now();
    }
    if (Date.now() - lastReport > 15_000) {
      lastReport = Date.now();
      const granted = new Set(
        events.records.filter((r) => r.type === APP_ASSIGNED && (r.data.appId === apps.autoAppId || r.data.appId === apps.approvalAppId)).map((r) => r.data.requestId),
      ).size;
      log(`[${apps.round}] waiting: ${granted}/${requests.length} granted, ${open} open${mails >= 0 ? `, ${mails}/${expectedMails} emails` : ''}`);
    }
    await sleep(open === 0 ? 1000 : 250);
  }
  return null;
}

async function main(): Promise<number> {
  const faultNames = process.argv.slice(2);
  const startedAt = Date.now();
  const codeAtStart = codeState();
  const run = randomUUID().slice(0, 6);
  const stack = await PrivateStack.create(root);
  const notes: string[] = [];
  const cleanups: (() => Promise<unknown>)[] = [];
  const cleanup = async () => {
    for (const step of cleanups.splice(0).reverse()) await step().catch((error: unknown) => console.error('chaos: cleanup:', error));
  };
  process.once('SIGINT', () => {
    log('interrupted: stopping the private stack');
    void cleanup().finally(() => process.exit(130));
  });

  try {
    log(`private stack in ${path.relative(root, stack.dir)}: Temporal ${stack.temporalAddress}, Kafka ${stack.kafkaBrokers}, PostgreSQL :${stack.ports.postgres}, Mailpit ${stack.mailpitUrl} (SMTP :${stack.ports.smtp})`);
    await stack.fresh();
    if (process.env.CHAOS_KEEP_STACK !== '1') cleanups.push(() => stack.stop());
    await stack.start();
    log('services up; applying the migrations');
    await stack.migrate();
    const smtp = await SmtpOutageSwitch.start(stack.mailpitSmtpUrl);
    cleanups.push(() => smtp.cut());

    const backendEnv: NodeJS.ProcessEnv = {
      ...stack.env(),
      SMTP_URL: smtp.smtpUrl,
      PAYLOAD_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      PAYLOAD_ENCRYPTION_KEY_ID: `chaos-${run}`,
      PAYLOAD_DECRYPTION_KEYS: '',
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_TASK_QUEUE: 'self-service',
      KAFKA_TOPIC_NAMESPACE: '',
      KAFKA_CONSUMER_GROUP: 'selfservice-ingress',
      KAFKA_CLIENT_ID: 'selfservice-backend',
    };
    const worker = new BackendProcess('worker', root, stack.logDir, backendEnv);
    const ingress = new BackendProcess('ingress', root, stack.logDir, backendEnv);
    const relay = new BackendProcess('relay', root, stack.logDir, backendEnv);
    cleanups.push(() => Promise.all([worker.stop(), ingress.stop(), relay.stop()]));
    const [workerStart, ingressStart] = await Promise.all([worker.start(), ingress.start(), relay.start()]);
    log(`worker ready in ${((workerStart.readyAt - workerStart.spawnedAt) / 1000).toFixed(1)} s, ingress in ${((ingressStart.readyAt - ingressStart.spawnedAt) / 1000).toFixed(1)} s (logs in ${path.relative(root, stack.logDir)})`);

    const topics = topicsFor('');
    const kafka = suiteKafka(stack.kafkaBrokers, 'chaos-suite');
    const events = new EventLog(kafka, topics);
    await events.start();
    cleanups.push(() => events.stop());
    const producer: Producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    cleanups.push(() => producer.disconnect());
    const commands = new CommandSender(producer, topics, events);
    const approver = new Approver(commands, events);
    const mailbox = new Mailbox(stack.mailpitUrl);

    const targets = { stack, worker, ingress, smtp, ingressGroup: { kafka, groupId: backendEnv.KAFKA_CONSUMER_GROUP! } };
    const faults = allFaults(targets).filter((fault) => faultNames.length === 0 || faultNames.includes(fault.name));
    if (faults.length === 0) throw new Error(`no fault named ${faultNames.join(', ')}; faults: ${allFaults(targets).map((f) => f.name).join(', ')}`);
    const org = planOrg(run, REQUESTS);
    const rounds = faults.map((fault) => planRound(org, fault.name));
    const seedStarted = Date.now();
    await seedOrg(commands, org);
    await Promise.all(rounds.map((apps) => seedRoundApps(commands, org, apps)));
    log(`seeded org ${org.orgId} (${REQUESTS + 2} users, ${rounds.length * 2} apps) through Kafka in ${((Date.now() - seedStarted) / 1000).toFixed(1)} s`);

    const inputs: RoundInput[] = [];
    for (const [index, fault] of faults.entries()) {
      const apps = rounds[index]!;
      const requests: TrackedRequest[] = [];
      const loadStartedAt = Date.now();
      log(`[${fault.name}] ${REQUESTS} requests over ${LOAD_SECONDS} s; fault in ${FAULT_AFTER_MS / 1000} s: ${fault.description}`);
      const load = sendRequests(commands, approver, org, apps, RATE, requests);
      await sleep(FAULT_AFTER_MS);
      const window = await fault.inject();
      log(`[${fault.name}] fault from +${((window.startedAt - loadStartedAt) / 1000).toFixed(1)} s to +${((window.endedAt - loadStartedAt) / 1000).toFixed(1)} s. ${window.notes.join('; ')}`);
      await load;
      const completedAt = await waitForRound(org, apps, requests, commands, events, mailbox, window.endedAt + ROUND_DEADLINE_MS);
      log(`[${fault.name}] ${completedAt ? `done ${((completedAt - loadStartedAt) / 1000).toFixed(1)} s after the first request` : `NOT done ${ROUND_DEADLINE_MS / 1000} s after the fault ended`}`);
      inputs.push({ org, apps, fault: fault.name, description: fault.description, window, requests, workflowStarts: new Map(), loadStartedAt, completedAt });
    }

    await sleep(SETTLE_MS);
    if (approver.errors.length > 0) notes.push(...approver.errors.map((error) => `approver: ${error}`));
    if (events.restarts > 0) notes.push(`the suite's event-log consumer was replaced ${events.restarts} time(s)`);
    const mails = await mailbox.refresh();
    const workflowStarts = await requestWorkflowStarts(backendEnv, org.orgId);
    for (const input of inputs) input.workflowStarts = workflowStarts;
    const db = new PgClient({ connectionString: stack.databaseUrl });
    await db.connect();
    const findings: RoundFindings[] = [];
    try {
      for (const input of inputs) findings.push(await auditRound(input, commands, events, db, mails));
    } finally {
      await db.end();
    }

    const judged = findings.map((round) => ({ ...round, problems: problemsOf(round) }));
    const passed = judged.every((round) => round.problems.length === 0);
    console.log('');
    console.log(formatTable(findings));
    console.log('');
    for (const round of judged) {
      const extras = [
        round.emailCopiesSameMessageId > 0 ? `${round.emailCopiesSameMessageId} email copies with a Message-ID already received` : '',
        round.decisionsResent > 0 ? `${round.decisionsResent} decisions refused and sent again (${Object.entries(round.resentCodes).map(([code, n]) => `${code} ${n}`).join(', ')})` : '',
        round.commandSendRetries > 0 ? `${round.commandSendRetries} command sends retried by the client` : '',
        Object.keys(round.rejections).length > 0 ? `rejected: ${Object.entries(round.rejections).map(([code, n]) => `${code} x${n}`).join(', ')}` : '',
      ].filter(Boolean);
      console.log(`${round.fault}: ${[...round.problems, ...extras].join('; ') || 'nothing lost, doubled or slow'}`);
      for (const note of round.fault_window.notes) console.log(`    fault: ${note}`);
      for (const example of round.examples) console.log(`    ${example}`);
    }
    for (const note of notes) console.log(`note: ${note}`);

    const codeAtEnd = codeState();
    if (codeAtEnd.diffSha1 !== codeAtStart.diffSha1) {
      notes.push(`the backend code changed during the run (uncommitted diff ${codeAtStart.diffSha1} -> ${codeAtEnd.diffSha1}); replacement processes ran the newer code`);
    }
    const report: ChaosReport = {
      startedAt: new Date(startedAt).toISOString(),
      finishedAt: new Date().toISOString(),
      seconds: (Date.now() - startedAt) / 1000,
      passed,
      resumeLimitSeconds: RESUME_LIMIT_SECONDS,
      code: codeAtStart,
      stack: {
        dir: path.relative(root, stack.dir),
        temporal: stack.temporalAddress,
        kafka: stack.kafkaBrokers,
        postgres: `127.0.0.1:${stack.ports.postgres}`,
        mailpit: stack.mailpitUrl,
        smtpRelay: smtp.smtpUrl,
        requestsPerRound: String(REQUESTS),
        loadSeconds: String(LOAD_SECONDS),
      },
      rounds: judged,
      notes,
    };
    const file = path.join(root, '.stack', 'chaos-report.json');
    writeReport(file, report);
    log(`${passed ? 'PASSED' : 'FAILED'} in ${report.seconds.toFixed(0)} s; report in ${path.relative(root, file)}`);
    return passed ? 0 : 1;
  } finally {
    await cleanup();
  }
}

runSuite('chaos', main);
