import type { Command } from '../events/inbound';
import { OutboundTypes, type OutboundEvent } from '../events/outbound';
import type { TopicName } from '../events/topics';
import type { Database, Transaction } from './database';

/**
 * Every inbound command is recorded exactly once, keyed by its CloudEvent id. In one transaction the
 * ledger stores the state change, the command's result, the audit entry and the outbound events
 * (transactional outbox); a redelivered command finds its row and gets the stored result back.
 */

/** A business rule said no. Thrown by a handler before it writes anything. */
export class CommandRejection extends Error {
  override readonly name = 'CommandRejection';
  constructor(
    readonly code: string,
    message: string,
    readonly audit?: AuditDraft,
    /** Extra fields for the rejected result, e.g. the id of the pending request that blocks a new one. */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** What the ledger needs to know of a command to record its result. */
export interface CommandRef {
  commandId: string;
  type: string;
  orgId?: string;
  /**
   * The ledger row and result event id, when not the command id: a command that conflicts with the one
   * owning its id is recorded apart (`<id>#conflict-<fingerprint>`), so each gets one result.
   */
  ledgerId?: string;
}

export interface AuditDraft {
  orgId: string;
  actorId: string;
  action: string;
  subject?: string;
  before?: unknown;
  after?: unknown;
}

export interface EventDraft {
  /** Unique per command; the event's CloudEvent id is `<commandId>:<name>`. */
  name: string;
  topic: TopicName;
  type: string;
  key: string;
  data: Record<string, unknown>;
}

export interface Accepted {
  details?: Record<string, unknown>;
  events?: EventDraft[];
  audit?: AuditDraft | AuditDraft[];
}

export interface CommandResult {
  commandId: string;
  commandType: string;
  outcome: 'ACCEPTED' | 'REJECTED';
  code?: string;
  message?: string;
  details: Record<string, unknown>;
  eventIds: string[];
}

export type CommandHandler<C extends Command = Command> = (tx: Transaction, command: C) => Promise<Accepted>;

export function commandRef(command: Command): CommandRef {
  return { commandId: command.commandId, type: command.type, orgId: 'orgId' in command.data ? command.data.orgId : undefined };
}

function toJson(value: unknown): object | undefined {
  return value === undefined ? undefined : (JSON.parse(JSON.stringify(value)) as object);
}

const ledgerIdOf = (command: CommandRef): string => command.ledgerId ?? command.commandId;

async function findRecorded(tx: Transaction, commandId: string): Promise<CommandResult | null> {
  const row = await tx.processedCommand.findUnique({ where: { commandId } });
  return row ? (row.result as unknown as CommandResult) : null;
}

async function writeRecord(
  tx: Transaction,
  command: CommandRef,
  result: CommandResult,
  events: OutboundEvent[],
  audit: AuditDraft | AuditDraft[] | undefined,
): Promise<void> {
  await tx.processedCommand.create({
    data: {
      commandId: ledgerIdOf(command),
      commandType: command.type,
      orgId: command.orgId ?? null,
      outcome: result.outcome,
      result: toJson(result)!,
    },
  });
  if (events.length > 0) {
    await tx.outboxEvent.createMany({
      data: events.map((event) => ({ ...event, data: toJson(event.data)!, time: new Date(event.time) })),
    });
  }
  const audits = audit === undefined ? [] : Array.isArray(audit) ? audit : [audit];
  if (audits.length > 0) {
    await tx.auditEntry.createMany({
      data: audits.map((entry) => ({
        orgId: entry.orgId,
        actorId: entry.actorId,
        action: entry.action,
        subject: entry.subject ?? null,
        outcome: result.outcome,
        code: result.code ?? null,
        message: result.message ?? null,
        before: toJson(entry.before),
        after: toJson(entry.after),
        commandId: command.commandId,
      })),
    });
  }
}

function resultEvent(command: CommandRef, result: CommandResult, time: string): OutboundEvent {
  const { orgId } = command;
  const data =
    result.outcome === 'ACCEPTED'
      ? { commandId: command.commandId, commandType: command.type, orgId, ...result.details }
      : {
          commandId: command.commandId,
          commandType: command.type,
          orgId,
          code: result.code,
          message: result.message,
          ...result.details,
        };
  return {
    id: `${ledgerIdOf(command)}:result`,
    topic: 'commandResults',
    type: result.outcome === 'ACCEPTED' ? OutboundTypes.commandAccepted : OutboundTypes.commandRejected,
    key: orgId ?? command.commandId,
    data,
    time,
  };
}

/** Records a command that was rejected before any handler ran (for example invalid data). */
export async function recordRejected(
  db: Database,
  command: CommandRef,
  code: string,
  message: string,
  audit?: AuditDraft,
  details: Record<string, unknown> = {},
): Promise<CommandResult> {
  return db.$transaction(async (tx) => {
    const recorded = await findRecorded(tx, ledgerIdOf(command));
    if (recorded) return recorded;
    const time = new Date().toISOString();
    const result: CommandResult = {
      commandId: command.commandId,
      commandType: command.type,
      outcome: 'REJECTED',
      code,
      message,
      details,
      eventIds: [],
    };
    const event = resultEvent(command, result, time);
    result.eventIds = [event.id];
    await writeRecord(tx, command, result, [event], audit);
    return result;
  });
}

/** Records the accepted result of a command whose effect happened elsewhere (in a request workflow). */
export async function recordAccepted(db: Database, command: CommandRef, details: Record<string, unknown>): Promise<CommandResult> {
  return db.$transaction(async (tx) => {
    const recorded = await findRecorded(tx, command.commandId);
    if (recorded) return recorded;
    const result: CommandResult = { commandId: command.commandId, commandType: command.type, outcome: 'ACCEPTED', details, eventIds: [] };
    const event = resultEvent(command, result, new Date().toISOString());
    result.eventIds = [event.id];
    await writeRecord(tx, command, result, [event], undefined);
    return result;
  });
}

export async function recordCommand<C extends Command>(
  db: Database,
  command: C,
  handle: CommandHandler<C>,
): Promise<CommandResult> {
  const ref = commandRef(command);
  try {
    return await db.$transaction(async (tx) => {
      const recorded = await findRecorded(tx, command.commandId);
      if (recorded) return recorded;
      const accepted = await handle(tx, command);
      const time = new Date().toISOString();
      const result: CommandResult = {
        commandId: command.commandId,
        commandType: command.type,
        outcome: 'ACCEPTED',
        details: accepted.details ?? {},
        eventIds: [],
      };
      const events = [
        resultEvent(ref, result, time),
        ...(accepted.events ?? []).map((draft) => ({
          id: `${command.commandId}:${draft.name}`,
          topic: draft.topic,
          type: draft.type,
          key: draft.key,
          data: draft.data,
          time,
        })),
      ];
      result.eventIds = events.map((event) => event.id);
      await writeRecord(tx, ref, result, events, accepted.audit);
      return result;
    });
  } catch (error) {
    if (error instanceof CommandRejection) {
      return recordRejected(db, ref, error.code, error.message, error.audit, error.details);
    }
    throw error;
  }
}

/**
 * Claims a command id (CloudEvents identify a command by source + id) for the fingerprint of its
 * content. The first claim wins; a later one with the same source and fingerprint is a repeat (a
 * redelivery or a producer's retry), anything else a conflict.
 */
export async function claimCommand(db: Database, claim: { commandId: string; source: string; fingerprint: string }): Promise<'new' | 'repeat' | 'conflict'> {
  const created = await db.commandClaim.createMany({ data: [claim], skipDuplicates: true });
  if (created.count === 1) return 'new';
  const owner = await db.commandClaim.findUnique({ where: { commandId: claim.commandId } });
  return owner && owner.source === claim.source && owner.fingerprint === claim.fingerprint ? 'repeat' : 'conflict';
}

/** Whether a command (or its conflict record) already has a result in the ledger. */
export async function hasResult(db: Database, commandId: string): Promise<boolean> {
  return (await db.processedCommand.count({ where: { commandId } })) > 0;
}

/**
 * Ends a command whose processing failed permanently: an INTERNAL_ERROR result naming the incident, and
 * a dead-letter copy of the validated command (through the outbox). Should even that write be refused
 * (the data is what no store accepts), both are written without the command's data.
 */
export async function recordFailed(db: Database, command: Command, incidentId: string): Promise<CommandResult> {
  const message = `the command could not be processed and was not applied (incident ${incidentId})`;
  const write = (withData: boolean) =>
    db.$transaction(async (tx) => {
      const ref = withData ? commandRef(command) : { commandId: command.commandId, type: command.type };
      const recorded = await findRecorded(tx, ref.commandId);
      if (recorded) return recorded;
      const time = new Date().toISOString();
      const result: CommandResult = { commandId: ref.commandId, commandType: ref.type, outcome: 'REJECTED', code: 'INTERNAL_ERROR', message, details: { incidentId }, eventIds: [] };
      const deadLetter: OutboundEvent = {
        id: `${ref.commandId}:dead-letter`,
        topic: 'deadLetters',
        type: command.type,
        key: ref.orgId ?? ref.commandId,
        time,
        data: { commandId: ref.commandId, source: withData ? command.source : undefined, incidentId, error: 'INTERNAL_ERROR', ...(withData ? { data: command.data } : {}) },
      };
      const events = [resultEvent(ref, result, time), deadLetter];
      result.eventIds = events.map((event) => event.id);
      await writeRecord(tx, ref, result, events, undefined);
      return result;
    });
  try {
    return await write(true);
  } catch {
    return write(false);
  }
}
