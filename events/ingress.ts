import { createHash } from 'node:crypto';
import type { Consumer, Kafka } from 'kafkajs';
import { decodeCloudEvent, inboundHeaders } from './cloudevents';
import { redactedValue, type DeadLetterSink, type InboundRecord } from './dead-letters';
import { inboundCommands, isInboundType, type Command } from './inbound';
import { bounded, FORBIDDEN_IN_NAMES, Limits } from './limits';
import { describeIssues } from './validation';
import { inboundTopics, type Topics } from './topics';

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
 */

export interface CommandRouter {
  route(command: Command, context: RouteContext): Promise<void>;
}

export interface RouteContext {
  /** The id was claimed before by the same content: a redelivery or a producer's retry. */
  repeat: boolean;
  /** Keeps the consumer's group membership alive during a long wait. */
  heartbeat(): Promise<void>;
}

export type ParsedRecord =
  | { ok: true; command: Command; fingerprint: string }
  | { ok: false; code: string; reason: string; commandId?: string; commandType?: string; source?: string; orgId?: string };

/** What the ingress needs of the command ledger. */
export interface IngressLedger {
  /** Claims a command id for a content fingerprint: new, a repeat of the same content, or a conflict. */
  claim(claim: CommandClaim): Promise<'new' | 'repeat' | 'conflict'>;
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

/** Canonical JSON (sorted keys), so the same content in another key order has the same fingerprint. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonical(item)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function fingerprintOf(parts: unknown[]): string {
  return createHash('sha256').update(canonical(parts)).digest('hex');
}

function recordBytes(record: InboundRecord): number {
  let size = (record.key?.length ?? 0) + (record.value?.length ?? 0);
  for (const [name, value] of Object.entries(record.headers)) {
    for (const single of Array.isArray(value) ? value : [value]) {
      size += name.length + (Buffer.isBuffer(single) ? single.length : String(single ?? '').length);
    }
  }
  return size;
}

/**
 * The id, type and source of a record whose headers were refused, read from those three headers alone
 * when each is given once and usable: the refusal can then still be answered.
 */
function addressOf(headers: Record<string, unknown>): { commandId?: string; commandType?: string; source?: string } {
  const single = (name: string, max: number): string | undefined => {
    const values = Object.entries(headers)
      .filter(([key]) => key.toLowerCase() === name)
      .flatMap(([, value]) => (Array.isArray(value) ? value : [value]))
      .filter((value) => value !== undefined && value !== null);
    if (values.length !== 1) return undefined;
    const bytes = Buffer.isBuffer(values[0]) ? values[0] : Buffer.from(String(values[0]));
    if (bytes.length > max * 4) return undefined;
    try {
      const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
      return text.length > 0 && text.length <= max && text.trim() === text && !FORBIDDEN_IN_NAMES.test(text) ? text : undefined;
    } catch {
      return undefined;
    }
  };
  const commandId = single('ce_id', Limits.ceId);
  return commandId ? { commandId, commandType: single('ce_type', Limits.ceType), source: single('ce_source', Limits.ceSource) } : {};
}

function orgIdOf(data: unknown): string | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const orgId = (data as { orgId?: unknown }).orgId;
  return typeof orgId === 'string' && orgId.length <= Limits.id ? orgId : undefined;
}

export function parseRecord(record: InboundRecord, topics: Topics, maxEventBytes: number = Limits.eventBytes): ParsedRecord {
  const headers = inboundHeaders(record.headers as Record<string, unknown>);
  if (!headers.ok) return { ok: false, code: 'MALFORMED_EVENT', reason: headers.reason, ...addressOf(record.headers as Record<string, unknown>) };
  const size = recordBytes(record);
  if (size > maxEventBytes) {
    const decodedHeaders = decodeCloudEvent({ key: null, value: Buffer.from('null'), headers: headers.headers });
    const addressed = decodedHeaders.ok ? decodedHeaders.event : { id: (decodedHeaders as { id?: string }).id, type: (decodedHeaders as { type?: string }).type, source: undefined };
    return { ok: false, code: 'EVENT_TOO_LARGE', reason: `the record has ${size} bytes; at most ${maxEventBytes} are allowed`, commandId: addressed.id, commandType: addressed.type, source: addressed.source };
  }
  const decoded = decodeCloudEvent({ key: record.key?.toString('utf8') ?? null, value: record.value, headers: headers.headers });
  if (!decoded.ok) {
    return { ok: false, code: 'MALFORMED_EVENT', reason: decoded.reason, commandId: decoded.id, commandType: decoded.type };
  }
  const { event } = decoded;
  const orgId = orgIdOf(event.data);
  const rejected = (code: string, reason: string): ParsedRecord => ({ ok: false, code, reason, commandId: event.id, commandType: event.type, source: event.source, orgId });
  if (!isInboundType(event.type)) {
    return rejected('UNKNOWN_COMMAND_TYPE', `type ${event.type} is not an inbound command of this contract`);
  }
  const spec = inboundCommands[event.type];
  if (topics[spec.topic] !== record.topic) {
    return rejected('WRONG_TOPIC', `type ${event.type} belongs on topic ${topics[spec.topic]}, not ${bounded(record.topic, 255)}`);
  }
  const data = spec.data.safeParse(event.data);
  if (!data.success) return rejected('INVALID_COMMAND', describeIssues(data.error.issues.slice(0, 10), 'data'));
  const command = {
    commandId: event.id,
    type: event.type,
    source: event.source,
    receivedAt: new Date().toISOString(),
    data: data.data,
  } as Command;
  return { ok: true, command, fingerprint: fingerprintOf([event.source, event.type, event.data]) };
}

export interface IngressDependencies {
  topics: Topics;
  router: CommandRouter;
  ledger: IngressLedger;
  deadLetters: DeadLetterSink;
  /** True for a failure that waiting can cure (a service down); anything else is permanent. */
  isTransient(error: unknown): boolean;
  maxEventBytes?: number;
  log?: (message: string) => void;
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

export async function handleRecord(record: InboundRecord, deps: IngressDependencies, heartbeat: () => Promise<void> = async () => undefined): Promise<void> {
  const where = `${bounded(record.topic, 255)}[${record.partition}]@${record.offset}`;
  let parsed: ParsedRecord;
  try {
    parsed = parseRecord(record, deps.topics, deps.maxEventBytes);
  } catch (error) {
    // A bug in validation must not stop the partition: the record is set aside with an incident.
    const incidentId = newIncidentId();
    deps.log?.(`incident ${incidentId}: validating ${where} failed: ${describeError(error)}`);
    parsed = { ok: false, code: 'INTERNAL_ERROR', reason: `the record could not be validated (incident ${incidentId})` };
  }
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
        await deps.ledger.reject({
          commandId: command.commandId,
          commandType: command.type,
          orgId: 'orgId' in command.data ? command.data.orgId : undefined,
          code: 'COMMAND_ID_CONFLICT',
          message: `command id ${command.commandId} was already used for a different command (another source, org or content); use a new id for a new command`,
          ledgerId: `${command.commandId}#conflict-${parsed.fingerprint.slice(0, 16)}`,
        });
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
 * Starts consuming every inbound topic. Records of one partition are handled one at a time, in order;
 * the partitions of one fetch are handled concurrently. kafkajs fetches again from a broker only when
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
  await consumer.connect();
  await consumer.subscribe({ topics: inboundTopics.map((name) => options.topics[name]), fromBeginning: true });
  await consumer.run({
    partitionsConsumedConcurrently: 16,
    eachMessage: async ({ topic, partition, message, heartbeat }) => {
      let beating = true;
      const beat = async () => {
        if (beating) await heartbeat().catch(() => undefined);
      };
      const timer = setInterval(() => void beat(), HEARTBEAT_MS);
      try {
        await handleRecord(
          { topic, partition, offset: message.offset, key: message.key, value: message.value, headers: message.headers ?? {} },
          options,
          beat,
        );
      } finally {
        beating = false;
        clearInterval(timer);
      }
    },
  });
  return consumer;
}
