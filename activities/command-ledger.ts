import type { Command } from '../events/inbound';
import { outboundEvents, type OutboundEvent } from '../events/outbound';
import { CommandRejection, commandRef, type Accepted, type AuditDraft, type CommandRef, type CommandResult, commandResultSchema } from '../rules/commands';
import type { Database, Transaction } from './database';
import { parseStored } from './stored';
import { insertOutboxRows, outboxRowsOf, type OutboxWrite } from './outbox';

/**
 * Every inbound command is recorded exactly once, keyed by its CloudEvent id. In one transaction the
 * ledger stores the state change, the command's result, the audit entry and the outbound events
 * (transactional outbox); a redelivered command finds its row and gets the stored result back.
 */

export type CommandHandler<C extends Command = Command> = (tx: Transaction, command: C) => Promise<Accepted>;

const ledgerIdOf = (command: CommandRef): string => command.ledgerId ?? command.commandId;

function ledgerRowOf(command: CommandRef, result: CommandResult) {
  return { commandId: ledgerIdOf(command), commandType: command.type, orgId: command.orgId ?? null, outcome: result.outcome, result };
}

/** The result recorded for a command (its ledger id), if any. */
export async function findRecorded(tx: Transaction | Database, commandId: string): Promise<CommandResult | null> {
  const row = await tx.processedCommand.findUnique({ where: { commandId } });
  return row ? parseStored(commandResultSchema, row.result, `the result of command ${commandId}`) : null;
}

/**
 * Ledger rows, outbox rows and audit entries, gathered and then written by one statement: each table's
 * rows come as one jsonb array, so a batch of 500 commands is three arrays, not 1,500 rows of query
 * arguments. Outbox rows and audit entries keep the order they were added in.
 */
const WRITE_LEDGER = `
WITH input AS (SELECT $1::jsonb AS c),
ledger AS (
  INSERT INTO "ProcessedCommand" ("commandId", "commandType", "orgId", "outcome", "result")
  SELECT l->>'commandId', l->>'commandType', l->>'orgId', (l->>'outcome')::"CommandOutcome", l->'result'
  FROM input, jsonb_array_elements(input.c->'commands') AS l
  RETURNING 1
),
audit AS (
  INSERT INTO "AuditEntry" ("orgId", "actorId", "action", "subject", "outcome", "code", "message", "before", "after", "commandId")
  SELECT a->>'orgId', a->>'actorId', a->>'action', a->>'subject', (a->>'outcome')::"CommandOutcome", a->>'code', a->>'message',
    NULLIF(a->'before', 'null'::jsonb), NULLIF(a->'after', 'null'::jsonb), a->>'commandId'
  FROM input, jsonb_array_elements(input.c->'audits') WITH ORDINALITY AS t(a, n)
  ORDER BY n
  RETURNING 1
),
outbox AS (
  ${insertOutboxRows(`(SELECT c->'events' FROM input)`)}
  RETURNING 1
)
SELECT (SELECT count(*) FROM ledger) AS "commands", (SELECT count(*) FROM audit) AS "audits", (SELECT count(*) FROM outbox) AS "events"`;

class LedgerWrites {
  private readonly commands: ReturnType<typeof ledgerRowOf>[] = [];
  private readonly events: OutboxWrite[] = [];
  private readonly audits: Record<string, unknown>[] = [];

  add(command: CommandRef, result: CommandResult, events: readonly OutboundEvent[], audit: AuditDraft | AuditDraft[] | undefined, held = false): this {
    this.commands.push(ledgerRowOf(command, result));
    this.events.push(...events.map((event) => ({ ...event, held })));
    const audits = audit === undefined ? [] : Array.isArray(audit) ? audit : [audit];
    this.audits.push(
      ...audits.map((entry) => ({
        orgId: entry.orgId,
        actorId: entry.actorId,
        action: entry.action,
        subject: entry.subject ?? null,
        outcome: result.outcome,
        code: result.code ?? null,
        message: result.message ?? null,
        before: entry.before,
        after: entry.after,
        commandId: command.commandId,
      })),
    );
    return this;
  }

  async flush(tx: Transaction): Promise<void> {
    if (this.commands.length === 0 && this.events.length === 0 && this.audits.length === 0) return;
    await tx.$queryRawUnsafe(WRITE_LEDGER, JSON.stringify({ commands: this.commands, audits: this.audits, events: outboxRowsOf(this.events) }));
  }
}

function resultEvent(command: CommandRef, result: CommandResult, time: string): OutboundEvent {
  const head = { commandId: command.commandId, commandType: command.type, orgId: command.orgId };
  const event =
    result.outcome === 'ACCEPTED'
      ? outboundEvents.commandAccepted({ ...head, ...result.details })
      : outboundEvents.commandRejected({ ...head, code: result.code!, message: result.message!, ...result.details });
  return { id: `${ledgerIdOf(command)}:result`, ...event, time };
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
  return db.$transaction(async (tx) => (await findRecorded(tx, ledgerIdOf(command))) ?? write(tx, rejected(command, code, message, audit, details)));
}

function rejected(
  command: CommandRef,
  code: string,
  message: string,
  audit?: AuditDraft,
  details: Record<string, unknown> = {},
): Written {
  const result: CommandResult = { commandId: command.commandId, commandType: command.type, outcome: 'REJECTED', code, message, details, eventIds: [] };
  const event = resultEvent(command, result, new Date().toISOString());
  result.eventIds = [event.id];
  return { command, result, events: [event], audit };
}

/** A command's result with what goes with it into the ledger. */
interface Written {
  command: CommandRef;
  result: CommandResult;
  events: OutboundEvent[];
  audit?: AuditDraft | AuditDraft[];
}

async function write(tx: Transaction, written: Written): Promise<CommandResult> {
  await new LedgerWrites().add(written.command, written.result, written.events, written.audit).flush(tx);
  return written.result;
}

/** Records the accepted result of a command whose effect happened elsewhere (in a request workflow). */
export async function recordAccepted(db: Database, command: CommandRef, details: Record<string, unknown>): Promise<CommandResult> {
  return db.$transaction(async (tx) => {
    const recorded = await findRecorded(tx, command.commandId);
    if (recorded) return recorded;
    return write(tx, accepted(command, { details }));
  });
}

/**
 * An accepted result, its events and its ledger row, for writers that put them in a statement of their
 * own (request-change.ts, request-submission.ts).
 */
export function acceptedWrite(command: CommandRef, outcome: Accepted) {
  const written = accepted(command, outcome);
  return { ...written, row: ledgerRowOf(written.command, written.result) };
}

export async function recordCommand<C extends Command>(db: Database, command: C, handle: CommandHandler<C>): Promise<CommandResult> {
  try {
    return await db.$transaction(async (tx) => (await findRecorded(tx, command.commandId)) ?? write(tx, accepted(commandRef(command), await handle(tx, command))));
  } catch (error) {
    if (error instanceof CommandRejection) {
      return recordRejected(db, commandRef(command), error.code, error.message, error.audit, error.details);
    }
    throw error;
  }
}

export interface CommandClaimInput {
  commandId: string;
  source: string;
  fingerprint: string;
}

export type ClaimOutcome = 'new' | 'repeat' | 'conflict';

/**
 * Claims a command id (CloudEvents identify a command by source + id) for the fingerprint of its
 * content. The first claim wins; a later one with the same source and fingerprint is a repeat (a
 * redelivery or a producer's retry), anything else a conflict.
 */
export async function claimCommand(db: Database, claim: CommandClaimInput): Promise<ClaimOutcome> {
  const [outcome] = await claimCommands(db, [claim]);
  return outcome!;
}

/** `claimCommand` for many commands in two statements; a later copy of an id in the same batch is a repeat or a conflict of the first. */
export async function claimCommands(db: Database, claims: readonly CommandClaimInput[]): Promise<ClaimOutcome[]> {
  if (claims.length === 0) return [];
  const inserted = await db.$queryRaw<{ commandId: string }[]>`
    INSERT INTO "CommandClaim" ("commandId", "source", "fingerprint")
    SELECT * FROM unnest(${claims.map((c) => c.commandId)}::text[], ${claims.map((c) => c.source)}::text[], ${claims.map((c) => c.fingerprint)}::text[])
    ON CONFLICT ("commandId") DO NOTHING
    RETURNING "commandId"`;
  const fresh = new Set(inserted.map((row) => row.commandId));
  const claimedBefore = claims.map((c) => c.commandId).filter((id) => !fresh.has(id));
  const owners = new Map(
    (claimedBefore.length === 0 ? [] : await db.commandClaim.findMany({ where: { commandId: { in: claimedBefore } } })).map((row) => [row.commandId, row]),
  );
  return claims.map((claim) => {
    if (fresh.delete(claim.commandId)) {
      owners.set(claim.commandId, { ...claim, claimedAt: new Date() });
      return 'new';
    }
    const owner = owners.get(claim.commandId);
    return owner && owner.source === claim.source && owner.fingerprint === claim.fingerprint ? 'repeat' : 'conflict';
  });
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
  const attempt = (withData: boolean) =>
    db.$transaction(async (tx) => (await findRecorded(tx, command.commandId)) ?? write(tx, failed(command, incidentId, withData)));
  try {
    return await attempt(true);
  } catch {
    return attempt(false);
  }
}

function failed(command: Command, incidentId: string, withData = true): Written {
  const message = `the command could not be processed and was not applied (incident ${incidentId})`;
  const ref = withData ? commandRef(command) : { commandId: command.commandId, type: command.type };
  const time = new Date().toISOString();
  const result: CommandResult = { commandId: ref.commandId, commandType: ref.type, outcome: 'REJECTED', code: 'INTERNAL_ERROR', message, details: { incidentId }, eventIds: [] };
  const deadLetter: OutboundEvent = {
    id: `${ref.commandId}:dead-letter`,
    ...outboundEvents.deadLetter(
      { type: command.type, orgId: ref.orgId },
      { commandId: ref.commandId, source: withData ? command.source : undefined, incidentId, error: 'INTERNAL_ERROR', ...(withData ? { data: command.data } : {}) },
    ),
    time,
  };
  const events = [resultEvent(ref, result, time), deadLetter];
  result.eventIds = events.map((event) => event.id);
  return { command: ref, result, events };
}

/**
 * Applies a run of commands of one type at once (a directory sync's user upserts): per command its
 * effect accepted or refused, in order; or null when the run cannot be taken at once (it then goes one
 * command at a time). Writes nothing before it decides.
 */
export type ManyHandler<C extends Command = Command> = (tx: Transaction, commands: readonly C[]) => Promise<(Accepted | CommandRejection)[] | null>;

/** One command of a batch, with the handlers that apply it. */
export interface BatchEntry<C extends Command = Command> {
  command: C;
  handler: CommandHandler<C>;
  many?: ManyHandler<C>;
}

export interface BatchRecord {
  result: CommandResult;
  /** Pending requests the command affects: to be told before its events (held meanwhile) go out. */
  affected: string[];
}

export interface BatchOptions {
  /** Per command, the pending requests it affects, read inside the transaction after the effects. */
  affectedBy(tx: Transaction, commands: readonly Command[]): Promise<string[][]>;
  /** Whether an error is transient (the whole batch is tried again) or the command's own fault. */
  isTransient(error: unknown): boolean;
  /** Names a permanent failure of one command; the command ends with INTERNAL_ERROR. */
  incident(command: Command, error: unknown): string;
}

/**
 * Applies a batch of one-transaction commands in ONE database transaction, as `recordCommand` does for
 * one: effects, ledger rows, audit and outbox rows. Each command (or run of commands with a `many`
 * handler) runs in a savepoint, so a refused command (or one that fails permanently) is rolled back
 * alone and recorded with its code. A command already in the ledger gets its stored result. Events of a
 * command that affects pending requests are written held, released once those were told (`releaseEvents`).
 */
export async function recordCommandBatch(db: Database, entries: readonly BatchEntry[], options: BatchOptions): Promise<BatchRecord[]> {
  return db.$transaction(async (tx) => {
    const stored = await tx.processedCommand.findMany({ where: { commandId: { in: entries.map((entry) => entry.command.commandId) } } });
    const recorded = new Map(stored.map((row) => [row.commandId, parseStored(commandResultSchema, row.result, `the result of command ${row.commandId}`)]));
    const outcomes = new Map<number, Written | { accepted: Accepted }>();
    const isNew = (index: number) => !recorded.has(entries[index]!.command.commandId);
    const seen = new Set<string>();
    for (let index = 0; index < entries.length; index += 1) {
      const entry = entries[index]!;
      if (!isNew(index) || seen.has(entry.command.commandId)) continue;
      let end = index + 1;
      if (entry.many) {
        const ids = new Set([entry.command.commandId]);
        while (end < entries.length && entries[end]!.many === entry.many && isNew(end) && !ids.has(entries[end]!.command.commandId)) ids.add(entries[end++]!.command.commandId);
      }
      const run = entries.slice(index, end);
      const applied = await inSavepoint(tx, options, run, async () => {
        if (!entry.many || run.length === 1) return [await entry.handler(tx, entry.command)];
        return entry.many(tx, run.map((item) => item.command));
      });
      if (applied === null) {
        // The run goes one command at a time.
        for (let at = index; at < end; at += 1) {
          const { command, handler } = entries[at]!;
          const one = await inSavepoint(tx, options, [entries[at]!], async () => [await handler(tx, command)]);
          outcomes.set(at, outcomeOf(command, one![0]!));
        }
      } else {
        applied.forEach((outcome, offset) => outcomes.set(index + offset, outcomeOf(run[offset]!.command, outcome)));
      }
      for (let at = index; at < end; at += 1) seen.add(entries[at]!.command.commandId);
      index = end - 1;
    }
    const acceptedAt = [...outcomes].filter(([, outcome]) => 'accepted' in outcome).map(([index]) => index);
    const affected = await options.affectedBy(tx, acceptedAt.map((index) => entries[index]!.command));
    const affectedOf = new Map(acceptedAt.map((index, position) => [index, affected[position] ?? []]));
    const writes = new LedgerWrites();
    const records: BatchRecord[] = [];
    for (const [index, { command }] of entries.entries()) {
      const known = recorded.get(command.commandId);
      if (known) {
        records.push({ result: known, affected: await stillHeld(tx, known, command, options) });
        continue;
      }
      const outcome = outcomes.get(index)!;
      const written = 'accepted' in outcome ? accepted(commandRef(command), outcome.accepted) : outcome;
      const requests = affectedOf.get(index) ?? [];
      writes.add(written.command, written.result, written.events, written.audit, requests.length > 0);
      recorded.set(command.commandId, written.result);
      records.push({ result: written.result, affected: requests });
    }
    await writes.flush(tx);
    return records;
  });
}

/**
 * Runs `apply` in a savepoint. A refusal or a permanent failure of a single command is rolled back and
 * becomes its outcome; a run that fails so is handed back as null, to go one command at a time.
 */
async function inSavepoint(
  tx: Transaction,
  options: BatchOptions,
  run: readonly BatchEntry[],
  apply: () => Promise<(Accepted | CommandRejection)[] | null>,
): Promise<(Accepted | CommandRejection | Written)[] | null> {
  await tx.$executeRawUnsafe('SAVEPOINT command');
  try {
    const outcomes = await apply();
    await tx.$executeRawUnsafe(outcomes === null ? 'ROLLBACK TO SAVEPOINT command' : 'RELEASE SAVEPOINT command');
    return outcomes;
  } catch (error) {
    await tx.$executeRawUnsafe('ROLLBACK TO SAVEPOINT command');
    if (error instanceof CommandRejection && run.length === 1) return [error];
    if (options.isTransient(error)) throw error;
    if (run.length > 1) return null;
    const { command } = run[0]!;
    return [failed(command, options.incident(command, error))];
  }
}

function outcomeOf(command: Command, outcome: Accepted | CommandRejection | Written): Written | { accepted: Accepted } {
  if (outcome instanceof CommandRejection) return rejected(commandRef(command), outcome.code, outcome.message, outcome.audit, outcome.details);
  if ('result' in outcome && 'command' in outcome) return outcome as Written;
  return { accepted: outcome as Accepted };
}

/** A recorded command whose events are still held (the process stopped before telling its requests). */
async function stillHeld(tx: Transaction, result: CommandResult, command: Command, options: BatchOptions): Promise<string[]> {
  const held = await tx.outboxEvent.count({ where: { id: { in: result.eventIds }, held: true } });
  return held > 0 ? ((await options.affectedBy(tx, [command]))[0] ?? []) : [];
}

/** Lets held events go to the relay. */
export async function releaseEvents(db: Database, eventIds: readonly string[]): Promise<void> {
  if (eventIds.length === 0) return;
  await db.outboxEvent.updateMany({ where: { id: { in: [...eventIds] }, held: true }, data: { held: false } });
  await db.$executeRawUnsafe(`SELECT pg_notify('selfservice_outbox', '')`);
}

function accepted(command: CommandRef, outcome: Accepted): Written {
  const time = new Date().toISOString();
  const result: CommandResult = { commandId: command.commandId, commandType: command.type, outcome: 'ACCEPTED', details: outcome.details ?? {}, eventIds: [] };
  const events = [
    resultEvent(command, result, time),
    ...(outcome.events ?? []).map((draft) => ({ id: `${command.commandId}:${draft.name}`, topic: draft.topic, type: draft.type, key: draft.key, data: draft.data, time })),
  ];
  result.eventIds = events.map((event) => event.id);
  return { command, result, events, audit: outcome.audit };
}
