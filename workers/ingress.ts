import { createHash } from 'node:crypto';
import type { Consumer, Kafka } from 'kafkajs';
import { redactedValue, type DeadLetterSink, type InboundRecord } from '../events/dead-letters';
import type { Command } from '../events/inbound';
import { bounded } from '../events/limits';
import { fingerprintOf, parseRecord, type ParsedRecord } from '../events/parse-record';
import { inboundTopics, type Topics } from '../events/topics';
import type { TraceContext } from '../events/trace-context';
import { commandIds } from './command-ids';
import type { LogFields, LogLine } from './logger';
import { inCommandSpan, inGroupSpan } from './tracing';

/**
 * Kafka ingress: turns each inbound record into a validated command and hands it to the router.
 *
 * - A record that is not a valid command goes to the dead-letter topic (a bounded, secret-free copy)
 *   and, when it carries a usable CloudEvent id, gets a rejected result recorded in the ledger.
 * - A command is identified by CloudEvents' `source` + `id`; its id is claimed with a fingerprint of
 *   its content, so a repeat with other content gets a conflict of its own and nothing of the first.
 * - A transient failure (a service down) is retried here, heartbeating, so the consumer stays in its
 *   group and resumes within seconds of the service coming back; nothing is committed meanwhile.
 * - A permanent failure (a bug, data no store accepts) ends that one command with `INTERNAL_ERROR`
 *   and an incident id that the log names, plus a dead-letter copy; the partition goes on.
 * - Consecutive one-transaction commands of a partition (a directory sync) are applied together, in
 *   one database transaction per group, in Kafka order; consecutive commands that start workflows of
 *   their own are started concurrently; Updates go one at a time.
 */

export interface CommandRouter {
  route(command: Command, context: RouteContext): Promise<void>;
  /**
   * How the command is carried out: `apply` (one transaction: neighbours share one), `workflow` (a
   * workflow of its own: neighbours start concurrently), `update` (on a running request: one at a time).
   */
  kindOf(command: Command): 'apply' | 'workflow' | 'update';
  /** Applies a group of such commands in order (each keeps its own result). */
  apply(commands: readonly Command[], context: RouteContext): Promise<unknown>;
}

export interface RouteContext {
  /** The id was claimed before by the same content: a redelivery or a producer's retry. */
  repeat: boolean;
  /** Keeps the consumer's group membership alive during a long wait. */
  heartbeat(): Promise<void>;
}

/** What the ingress needs of the command ledger. */
export interface IngressLedger {
  /** Claims a command id for a content fingerprint: new, a repeat of the same content, or a conflict. */
  claim(claim: CommandClaim): Promise<'new' | 'repeat' | 'conflict'>;
  /** `claim` for a group, in order. */
  claimAll(claims: readonly CommandClaim[]): Promise<('new' | 'repeat' | 'conflict')[]>;
  /** Records (once) and publishes a rejected result. */
  reject(rejection: IngressRejection): Promise<void>;
}

export interface CommandClaim {
  commandId: string;
  source: string;
  fingerprint: string;
}

export interface IngressRejection {
  commandId: string;
  commandType: string;
  orgId?: string;
  code: string;
  message: string;
  /** Set for a conflict: the ledger keeps the conflict apart from the command that owns the id. */
  ledgerId?: string;
  details?: Record<string, unknown>;
}

export interface IngressDependencies {
  topics: Topics;
  router: CommandRouter;
  ledger: IngressLedger;
  deadLetters: DeadLetterSink;
  /** True for a failure that waiting can cure (a service down); anything else is permanent. */
  isTransient(error: unknown): boolean;
  maxEventBytes?: number;
  /** Log lines; each is bound to the ids of its record and command (commandId, requestId, workflowId). */
  log?: LogLine;
  /** Where counts and timings go (workers/metrics.ts); none in most tests. */
  metrics?: IngressMetrics;
}

/** What the ingress reports for Prometheus (workers/metrics.ts). Labels: topics, codes, kinds, outcomes only. */
export interface IngressMetrics {
  /** A record taken off its topic: `valid` (a command) or `invalid` (dead-lettered). */
  record(topic: string, outcome: 'valid' | 'invalid'): void;
  claim(result: 'new' | 'repeat' | 'conflict'): void;
  deadLetter(topic: string, code: string): void;
  rejection(code: string): void;
  /** `count` records of one kind were handled in `seconds` (one group, or one record). */
  handled(kind: 'apply' | 'workflow' | 'update' | 'refused', seconds: number, count: number): void;
  lag(topic: string, partition: number, lag: number): void;
  /** The consumer joined (true) or left / lost (false) its group. */
  membership(joined: boolean): void;
}

const RETRY_DELAYS_MS = [200, 500, 1000, 2000, 3000];
const HEARTBEAT_MS = 3000;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Runs `attempt` until it succeeds or fails permanently, retrying transient failures with a short back-off. */
async function untilDone<T>(label: string, attempt: () => Promise<T>, deps: IngressDependencies, heartbeat: () => Promise<void>): Promise<T> {
  for (let tries = 0; ; tries += 1) {
    try {
      return await attempt();
    } catch (error) {
      if (!deps.isTransient(error)) throw error;
      const delay = RETRY_DELAYS_MS[Math.min(tries, RETRY_DELAYS_MS.length - 1)] ?? 3000;
      if (tries % 10 === 0) deps.log?.(`${label}: ${describeError(error)}; retrying (attempt ${tries + 1})`);
      await sleep(delay);
      await heartbeat().catch(() => undefined);
    }
  }
}

/** An error as a log line may show it: its name, code and a bounded message (no payload is put in errors by this code). */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return bounded(String(error), 300);
  const code = (error as { code?: unknown }).code;
  return bounded(`${error.name}${code !== undefined ? ` ${String(code)}` : ''}: ${error.message}`, 500);
}

export function newIncidentId(): string {
  return `inc-${createHash('sha256').update(`${Date.now()}:${Math.random()}`).digest('hex').slice(0, 16)}`;
}

function whereOf(record: InboundRecord): string {
  return `${bounded(record.topic, 255)}[${record.partition}]@${record.offset}`;
}

function parsedOrIncident(record: InboundRecord, deps: IngressDependencies): ParsedRecord {
  try {
    return parseRecord(record, deps.topics, deps.maxEventBytes);
  } catch (error) {
    // A bug in validation must not stop the partition: the record is set aside with an incident.
    const incidentId = newIncidentId();
    deps.log?.(`incident ${incidentId}: validating ${whereOf(record)} failed: ${describeError(error)}`);
    return { ok: false, code: 'INTERNAL_ERROR', reason: `the record could not be validated (incident ${incidentId})` };
  }
}

/** A command whose id another command owns: recorded apart, with a conflict result of its own. */
function conflictOf(command: Command, fingerprint: string): IngressRejection {
  return {
    commandId: command.commandId,
    commandType: command.type,
    orgId: 'orgId' in command.data ? command.data.orgId : undefined,
    code: 'COMMAND_ID_CONFLICT',
    message: `command id ${command.commandId} was already used for a different command (another source, org or content); use a new id for a new command`,
    ledgerId: `${command.commandId}#conflict-${fingerprint.slice(0, 16)}`,
  };
}

/** The dependencies with every log line bound to `fields`. */
function boundTo(deps: IngressDependencies, fields: LogFields): IngressDependencies {
  const { log } = deps;
  return log ? { ...deps, log: (message, more) => log(message, { ...fields, ...more }) } : deps;
}

/** Where a record is, as log fields. */
function recordFields(record: InboundRecord): LogFields {
  return { topic: bounded(record.topic, 255), partition: record.partition, offset: record.offset };
}

/** One record, in a span of its own (a child of the trace it carries), its log lines bound to its ids. */
async function handleParsed(record: InboundRecord, parsed: ParsedRecord, deps: IngressDependencies, heartbeat: () => Promise<void>): Promise<void> {
  const fields = { ...recordFields(record), ...(parsed.ok ? commandIds(parsed.command) : parsed.commandId ? { commandId: parsed.commandId } : {}) };
  await inCommandSpan(record, parsed, () => handleParsedRecord(record, parsed, boundTo(deps, fields), heartbeat));
}

async function handleParsedRecord(record: InboundRecord, parsed: ParsedRecord, deps: IngressDependencies, heartbeat: () => Promise<void>): Promise<void> {
  const where = whereOf(record);
  if (!parsed.ok) {
    const refused = parsed;
    try {
      await untilDone(`dead-lettering ${where}`, () => refuse(record, refused, deps, where), deps, heartbeat);
    } catch (error) {
      // Even the dead-letter path failed on this record: keep a copy without its content, never stall.
      const incidentId = newIncidentId();
      deps.log?.(`incident ${incidentId}: dead-lettering ${where} failed: ${describeError(error)}`);
      const bare = { ...record, key: null, value: null, headers: {} };
      await untilDone(`dead-lettering ${where} without content`, () => deps.deadLetters.send(bare, `${refused.code}: content dropped (incident ${incidentId})`), deps, heartbeat).catch(
        (again: unknown) => deps.log?.(`incident ${incidentId}: record ${where} skipped: ${describeError(again)}`),
      );
    }
    return;
  }
  const { command } = parsed;
  try {
    await untilDone(`handing over ${where}`, async () => {
      const claim = await deps.ledger.claim({ commandId: command.commandId, source: command.source, fingerprint: parsed.fingerprint });
      if (claim === 'conflict') {
        deps.log?.(`command id conflict at ${where}: ${command.commandId}`);
        await deps.ledger.reject(conflictOf(command, parsed.fingerprint));
        return;
      }
      await deps.router.route(command, { repeat: claim === 'repeat', heartbeat });
    }, deps, heartbeat);
  } catch (error) {
    const incidentId = newIncidentId();
    deps.log?.(`incident ${incidentId}: command ${command.commandId} (${command.type}) at ${where} failed permanently: ${describeError(error)}`);
    await untilDone(`recording incident ${incidentId}`, async () => {
      await deps.deadLetters.send(record, `INTERNAL_ERROR: incident ${incidentId}`);
      await deps.ledger.reject({
        commandId: command.commandId,
        commandType: command.type,
        orgId: 'orgId' in command.data ? command.data.orgId : undefined,
        code: 'INTERNAL_ERROR',
        message: `the command could not be processed and was not applied (incident ${incidentId})`,
        details: { incidentId },
      });
    }, deps, heartbeat).catch((again: unknown) => deps.log?.(`incident ${incidentId}: no result recorded for ${command.commandId}: ${describeError(again)}`));
  }
}

type Applicable = { record: InboundRecord; command: Command; fingerprint: string; trace?: TraceContext };

/** At most this many one-transaction commands go into one database transaction. */
const MAX_GROUP = 500;
/** At most this many workflows of one partition are started at once. */
const STARTS_AT_ONCE = 32;

/**
 * Handles the records of one partition in order. Runs of one-transaction commands are applied as
 * groups; runs of commands that start workflows of their own (independent of each other: their ids
 * differ) are started concurrently; everything else one at a time. `handled` is told the offset of a
 * record once it (and everything before it) is done.
 */
export async function handleRecords(
  records: readonly InboundRecord[],
  deps: IngressDependencies,
  heartbeat: () => Promise<void>,
  handled: (offset: string) => void,
  /** False once the consumer is stopping: what is not begun is left for the next member (its offset unresolved). */
  keepGoing: () => boolean = () => true,
): Promise<void> {
  let group: Applicable[] = [];
  let kind: 'apply' | 'workflow' | null = null;
  const flush = async () => {
    if (group.length === 0) return;
    const taking = group;
    group = [];
    const began = performance.now();
    if (kind === 'apply') await applyGroup(taking, deps, heartbeat);
    else await startGroup(taking, deps, heartbeat);
    deps.metrics?.handled(kind ?? 'workflow', (performance.now() - began) / 1000, taking.length);
    handled(taking[taking.length - 1]!.record.offset);
  };
  for (const record of records) {
    if (!keepGoing()) {
      group = []; // not begun: redelivered to whoever takes the partition
      return;
    }
    const parsed = parsedOrIncident(record, deps);
    deps.metrics?.record(record.topic, parsed.ok ? 'valid' : 'invalid');
    const next = parsed.ok ? deps.router.kindOf(parsed.command) : null;
    if (parsed.ok && (next === 'apply' || next === 'workflow')) {
      if (next !== kind || group.length >= (next === 'apply' ? MAX_GROUP : STARTS_AT_ONCE)) await flush();
      kind = next;
      group.push({ record, command: parsed.command, fingerprint: parsed.fingerprint, trace: parsed.trace });
      continue;
    }
    await flush();
    const began = performance.now();
    await handleParsed(record, parsed, deps, heartbeat);
    deps.metrics?.handled(parsed.ok ? 'update' : 'refused', (performance.now() - began) / 1000, 1);
    handled(record.offset);
  }
  await flush();
}

/** Commands that start workflows of their own: each handled as on its own, all at once. */
async function startGroup(group: readonly Applicable[], deps: IngressDependencies, heartbeat: () => Promise<void>): Promise<void> {
  await Promise.all(group.map(({ record, command, fingerprint, trace }) => handleParsed(record, { ok: true, command, fingerprint, trace }, deps, heartbeat)));
}

/** A group in one transaction, in one span linked to each command's trace; should it fail permanently, each command is handled on its own. */
async function applyGroup(group: readonly Applicable[], deps: IngressDependencies, heartbeat: () => Promise<void>): Promise<void> {
  const fields = group.length === 1 ? commandIds(group[0]!.command) : { commands: group.length };
  await inGroupSpan(group, () => applyGroupInTransaction(group, boundTo(deps, { ...recordFields(group[0]!.record), ...fields }), heartbeat));
}

async function applyGroupInTransaction(group: readonly Applicable[], deps: IngressDependencies, heartbeat: () => Promise<void>): Promise<void> {
  const where = `${whereOf(group[0]!.record)}..${group[group.length - 1]!.record.offset}`;
  try {
    await untilDone(`applying ${where}`, async () => {
      const claims = await deps.ledger.claimAll(group.map(({ command, fingerprint }) => ({ commandId: command.commandId, source: command.source, fingerprint })));
      const applicable: Command[] = [];
      for (const [index, { command, fingerprint }] of group.entries()) {
        if (claims[index] !== 'conflict') applicable.push(command);
        else {
          deps.log?.(`command id conflict at ${where}: ${command.commandId}`, commandIds(command));
          await deps.ledger.reject(conflictOf(command, fingerprint));
        }
      }
      await deps.router.apply(applicable, { repeat: false, heartbeat });
    }, deps, heartbeat);
  } catch (error) {
    deps.log?.(`applying ${where} as a group failed (${describeError(error)}); handling each command on its own`);
    for (const { record, command, fingerprint, trace } of group) await handleParsed(record, { ok: true, command, fingerprint, trace }, deps, heartbeat);
  }
}

/** A record that is not a valid command: a dead-letter copy, and a result when it can be addressed. */
async function refuse(record: InboundRecord, parsed: Extract<ParsedRecord, { ok: false }>, deps: IngressDependencies, where: string): Promise<void> {
  const removed = redactedValue(record.value).removed;
  const reason = removed.length > 0 ? `${parsed.reason} (removed from the dead-letter copy: ${removed.join(', ')})` : parsed.reason;
  deps.log?.(`dead-lettering ${where}: ${parsed.code} ${bounded(reason, 300)}`);
  await deps.deadLetters.send(record, `${parsed.code}: ${reason}`);
  if (!parsed.commandId) return;
  const claim = await deps.ledger.claim({
    commandId: parsed.commandId,
    source: parsed.source ?? '',
    fingerprint: fingerprintOf(['refused', record.value?.toString('base64') ?? null, parsed.code, parsed.source ?? null, parsed.commandType ?? null]),
  });
  const conflict = claim === 'conflict';
  await deps.ledger.reject({
    commandId: parsed.commandId,
    commandType: parsed.commandType ?? 'unknown',
    orgId: parsed.orgId,
    code: conflict ? 'COMMAND_ID_CONFLICT' : parsed.code,
    message: conflict
      ? `command id ${parsed.commandId} was already used for a different command; this one was also refused: ${bounded(reason)}`
      : bounded(reason),
    ...(conflict ? { ledgerId: `${parsed.commandId}#conflict-${fingerprintOf([record.value?.toString('base64') ?? null]).slice(0, 16)}` } : {}),
  });
}

export interface IngressOptions extends IngressDependencies {
  kafka: Kafka;
  groupId: string;
}

/**
 * Starts consuming every inbound topic. Records of one partition are handled in order (runs of
 * one-transaction commands as groups); the partitions of one fetch are handled concurrently. kafkajs fetches again from a broker only when
 * the whole previous batch is handled, so a long wait (a worker being replaced) delays later records too.
 */
export async function startIngress(options: IngressOptions): Promise<Consumer> {
  const consumer = options.kafka.consumer({
    groupId: options.groupId,
    // A replaced ingress takes over within seconds: a dead member is evicted after 10 s.
    sessionTimeout: 10000,
    rebalanceTimeout: 20000,
    heartbeatInterval: 1000,
    retry: { initialRetryTime: 250, maxRetryTime: 3000, retries: Number.MAX_SAFE_INTEGER },
  });
  const deps = withMetrics(options);
  const { metrics } = options;
  if (metrics) {
    consumer.on(consumer.events.GROUP_JOIN, () => metrics.membership(true));
    for (const left of [consumer.events.CRASH, consumer.events.STOP, consumer.events.DISCONNECT]) consumer.on(left, () => metrics.membership(false));
  }
  await consumer.connect();
  await consumer.subscribe({ topics: inboundTopics.map((name) => options.topics[name]), fromBeginning: true });
  await consumer.run({
    partitionsConsumedConcurrently: 16,
    eachBatchAutoResolve: false,
    eachBatch: async ({ batch, heartbeat, resolveOffset, isRunning, isStale }) => {
      let beating = true;
      const beat = async () => {
        if (beating) await heartbeat().catch(() => undefined);
      };
      const timer = setInterval(() => void beat(), HEARTBEAT_MS);
      try {
        const records: InboundRecord[] = [];
        for (const message of batch.messages) {
          if (!isRunning() || isStale()) break;
          records.push({ topic: batch.topic, partition: batch.partition, offset: message.offset, key: message.key, value: message.value, headers: message.headers ?? {} });
        }
        metrics?.lag(batch.topic, batch.partition, Number(batch.offsetLagLow()));
        // On stop (SIGTERM) or a rebalance, what is not begun is left unresolved: only what was handled is committed.
        await handleRecords(records, deps, beat, resolveOffset, () => isRunning() && !isStale());
        if (isRunning()) metrics?.lag(batch.topic, batch.partition, Number(batch.offsetLag()));
      } finally {
        beating = false;
        clearInterval(timer);
      }
    },
  });
  return consumer;
}

/** The dependencies with the ledger and the dead-letter sink counted (claims, rejections, dead letters). */
function withMetrics(deps: IngressDependencies): IngressDependencies {
  const { metrics } = deps;
  if (!metrics) return deps;
  const { ledger, deadLetters } = deps;
  return {
    ...deps,
    ledger: {
      async claim(claim) {
        const result = await ledger.claim(claim);
        metrics.claim(result);
        return result;
      },
      async claimAll(claims) {
        const results = await ledger.claimAll(claims);
        for (const result of results) metrics.claim(result);
        return results;
      },
      async reject(rejection) {
        await ledger.reject(rejection);
        metrics.rejection(rejection.code);
      },
    },
    deadLetters: {
      async send(record, reason) {
        await deadLetters.send(record, reason);
        metrics.deadLetter(record.topic, /^([A-Z][A-Z_]*):/.exec(reason)?.[1] ?? 'OTHER');
      },
    },
  };
}
