import type { Prisma } from '../prisma/client/client';
import { commandResultSchema, type CommandResult } from '../rules/commands';
import type { Database } from './database';
import { auditExportRecordOf, type AuditExportRecord } from './read-models';
import { parseStored } from './stored';

/**
 * What an operator reads about requests and the audit trail (the CLI's `requests` and `audit export`):
 * plain queries over the tables the commands and the request workflows write. Nothing here asks
 * Temporal; the database is the read model.
 */

export const REQUEST_STATUSES = ['PENDING', 'APPROVED', 'DENIED', 'EXPIRED', 'CANCELLED', 'DELETED'] as const;
export type RequestStatusName = (typeof REQUEST_STATUSES)[number];

/** History entries that name who decided a step (or overrode the chain). */
const DECIDING_EVENTS = ['app.access_request.approver.approve', 'app.access_request.approver.deny', 'app.access_request.override'];

export interface RequestFilter {
  orgId?: string;
  requesterId?: string;
  /** A current approver of the pending step, or someone who decided a step or overrode the request. */
  approverId?: string;
  appId?: string;
  status?: RequestStatusName;
  limit: number;
}

export interface RequestSummary {
  requestId: string;
  orgId: string;
  appId: string;
  appLabel: string | null;
  requesterId: string;
  status: string;
  currentStep: number | null;
  currentApproverIds: string[];
  workflowId: string;
  commandId: string;
  comment: string | null;
  closedReason: string | null;
  createdAt: string;
  updatedAt: string;
  closedAt: string | null;
}

type RequestRow = Prisma.AppRequestGetPayload<object>;

function labelOf(plan: unknown): string | null {
  if (typeof plan !== 'object' || plan === null || !('appLabel' in plan)) return null;
  const label = (plan as { appLabel?: unknown }).appLabel;
  return typeof label === 'string' ? label : null;
}

function summaryOf(row: RequestRow): RequestSummary {
  return {
    requestId: row.id,
    orgId: row.orgId,
    appId: row.appId,
    appLabel: labelOf(row.plan),
    requesterId: row.requesterId,
    status: row.status,
    currentStep: row.currentStep,
    currentApproverIds: row.currentApproverIds,
    workflowId: row.workflowId,
    commandId: row.commandId,
    comment: row.comment,
    closedReason: row.closedReason,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
    closedAt: row.closedAt?.toISOString() ?? null,
  };
}

/** Requests matching every given filter, newest first, at most `limit`. */
export async function findRequests(db: Database, filter: RequestFilter): Promise<RequestSummary[]> {
  const where: Prisma.AppRequestWhereInput = {
    ...(filter.orgId !== undefined ? { orgId: filter.orgId } : {}),
    ...(filter.requesterId !== undefined ? { requesterId: filter.requesterId } : {}),
    ...(filter.appId !== undefined ? { appId: filter.appId } : {}),
    ...(filter.status !== undefined ? { status: filter.status } : {}),
    ...(filter.approverId !== undefined
      ? {
          OR: [
            { currentApproverIds: { has: filter.approverId } },
            { history: { some: { actorId: filter.approverId, name: { in: DECIDING_EVENTS } } } },
          ],
        }
      : {}),
  };
  const rows = await db.appRequest.findMany({ where, orderBy: [{ createdAt: 'desc' }, { id: 'desc' }], take: filter.limit });
  return rows.map(summaryOf);
}

export type TimelineSource = 'history' | 'command' | 'audit' | 'event' | 'email';

/** One thing that happened to a request, from whichever table keeps it. */
export interface TimelineEntry {
  at: string;
  source: TimelineSource;
  /** The history's event name, the command type, the audit action, the outbound type, or `email`. */
  what: string;
  actorId: string | null;
  detail: Record<string, unknown>;
}

export interface RequestTimeline {
  request: RequestSummary;
  entries: TimelineEntry[];
}

/** Order of entries written at the same instant: the command, then what it did, then what went out. */
const SOURCE_ORDER: Record<TimelineSource, number> = { command: 0, audit: 1, history: 2, event: 3, email: 4 };

const compact = (detail: Record<string, unknown>): Record<string, unknown> =>
  Object.fromEntries(Object.entries(detail).filter(([, value]) => value !== null && value !== undefined && !(Array.isArray(value) && value.length === 0)));

function eventIdsOf(result: Prisma.JsonValue): string[] {
  if (typeof result !== 'object' || result === null || Array.isArray(result)) return [];
  const ids = (result as { eventIds?: unknown }).eventIds;
  return Array.isArray(ids) ? ids.filter((id): id is string => typeof id === 'string') : [];
}

function resultField(result: Prisma.JsonValue, field: 'code' | 'message'): string | null {
  if (typeof result !== 'object' || result === null || Array.isArray(result)) return null;
  const value = (result as Record<string, unknown>)[field];
  return typeof value === 'string' ? value : null;
}

/**
 * Everything the database keeps about one request, in time order: its history (AppRequestEvent), the
 * commands that named it (their results in the ledger), the audit entries about it (admin actions,
 * refused attempts too), the outbound events written for it (published or still waiting) and the
 * emails sent about it. Null when there is no such request.
 */
export async function requestTimeline(db: Database, requestId: string): Promise<RequestTimeline | null> {
  const request = await db.appRequest.findUnique({ where: { id: requestId } });
  if (!request) return null;
  const [history, audits, emails] = await Promise.all([
    db.appRequestEvent.findMany({ where: { requestId }, orderBy: { sequence: 'asc' } }),
    db.auditEntry.findMany({ where: { orgId: request.orgId, subject: requestId }, orderBy: { id: 'asc' } }),
    db.emailDelivery.findMany({ where: { dedupeKey: { startsWith: `${requestId}:` } }, orderBy: { createdAt: 'asc' } }),
  ]);
  const auditCommandIds = audits.flatMap((audit) => (audit.commandId ? [audit.commandId] : []));
  // Accepted commands carry the request's id in their result; refused admin actions are found through their audit entry.
  const commands = await db.processedCommand.findMany({
    where: {
      OR: [{ commandId: request.commandId }, { commandId: { in: auditCommandIds } }, { result: { path: ['details', 'requestId'], equals: requestId } }],
    },
    orderBy: { processedAt: 'asc' },
  });
  const eventIds = [
    ...history.flatMap((entry) => [`${requestId}:${entry.sequence}`, `${requestId}:${entry.sequence}:dashboard`]),
    ...commands.flatMap((command) => eventIdsOf(command.result)),
  ];
  const events = await db.outboxEvent.findMany({
    where: { id: { in: eventIds } },
    select: { id: true, type: true, topic: true, createdAt: true, publishedAt: true, held: true },
    orderBy: { position: 'asc' },
  });

  const entries: TimelineEntry[] = [
    ...commands.map((command) => ({
      at: command.processedAt.toISOString(),
      source: 'command' as const,
      what: command.commandType,
      actorId: null,
      detail: compact({ commandId: command.commandId, outcome: command.outcome, code: resultField(command.result, 'code'), message: resultField(command.result, 'message') }),
    })),
    ...history.map((entry) => {
      const data = typeof entry.data === 'object' && entry.data !== null && !Array.isArray(entry.data) ? (entry.data as Record<string, unknown>) : {};
      return {
        at: entry.at.toISOString(),
        source: 'history' as const,
        what: entry.name,
        actorId: entry.actorId,
        detail: compact({ sequence: entry.sequence, step: entry.step, comment: entry.comment, ...data }),
      };
    }),
    ...audits.map((audit) => ({
      at: audit.at.toISOString(),
      source: 'audit' as const,
      what: audit.action,
      actorId: audit.actorId,
      detail: compact({ outcome: audit.outcome, code: audit.code, message: audit.message, commandId: audit.commandId }),
    })),
    ...events.map((event) => ({
      at: event.createdAt.toISOString(),
      source: 'event' as const,
      what: event.type,
      actorId: null,
      detail: compact({ eventId: event.id, published: event.publishedAt?.toISOString() ?? (event.held ? 'held' : 'waiting') }),
    })),
    ...emails.map((email) => ({
      at: (email.sentAt ?? email.createdAt).toISOString(),
      source: 'email' as const,
      what: 'email',
      actorId: null,
      detail: compact({ to: email.recipient, subject: email.subject, sent: email.sentAt ? true : false }),
    })),
  ];
  entries.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : SOURCE_ORDER[a.source] - SOURCE_ORDER[b.source]));
  return { request: summaryOf(request), entries };
}

export interface AuditFilter {
  orgId?: string;
  /** From this time on (inclusive). */
  since?: Date;
  /** Before this time (exclusive). */
  until?: Date;
  actorId?: string;
  /** An action (`app-request.delete`), or a prefix ending in `*` (`app-request.*`). */
  action?: string;
  /** The subject acted on: a request id, for the entries about one request. */
  subject?: string;
  /** Entries up to this id only (the export's snapshot: what was written before it started). */
  throughId?: bigint;
}

function auditWhere(filter: AuditFilter): Prisma.AuditEntryWhereInput {
  const action = filter.action;
  return {
    ...(filter.orgId !== undefined ? { orgId: filter.orgId } : {}),
    ...(filter.actorId !== undefined ? { actorId: filter.actorId } : {}),
    ...(filter.subject !== undefined ? { subject: filter.subject } : {}),
    ...(action !== undefined ? { action: action.endsWith('*') ? { startsWith: action.slice(0, -1) } : action } : {}),
    ...(filter.since || filter.until ? { at: { ...(filter.since ? { gte: filter.since } : {}), ...(filter.until ? { lt: filter.until } : {}) } } : {}),
    ...(filter.throughId !== undefined ? { id: { lte: filter.throughId } } : {}),
  };
}

/** The id of the last audit entry written (0 when there is none): an export's snapshot. */
export async function lastAuditEntryId(db: Database): Promise<bigint> {
  const last = await db.auditEntry.findFirst({ orderBy: { id: 'desc' }, select: { id: true } });
  return last?.id ?? 0n;
}

/** How many entries matching the filter the audit sealer has not chained yet (the unsealed entries' partial index). */
export function countUnsealedAuditEntries(db: Database, filter: AuditFilter): Promise<number> {
  return db.auditEntry.count({ where: { AND: [auditWhere(filter), { hash: null }] } });
}

/**
 * The audit entries matching the filter, in the order they were written, read a page at a time (by
 * id, so a page costs the same wherever it starts and the whole trail is never in memory).
 */
export async function* auditEntries(db: Database, filter: AuditFilter, pageSize = 1000): AsyncGenerator<AuditExportRecord> {
  const where = auditWhere(filter);
  let after: bigint | null = null;
  for (;;) {
    const page: Prisma.AuditEntryGetPayload<object>[] = await db.auditEntry.findMany({
      where: after === null ? where : { AND: [where, { id: { gt: after } }] },
      orderBy: { id: 'asc' },
      take: pageSize,
    });
    for (const row of page) yield auditExportRecordOf(row);
    if (page.length < pageSize) return;
    after = page[page.length - 1]!.id;
  }
}

/** The recorded result of a command (or of its conflict record), or null while it has none. */
export async function readCommandResult(db: Database, ledgerId: string): Promise<CommandResult | null> {
  const row = await db.processedCommand.findUnique({ where: { commandId: ledgerId } });
  return row ? parseStored(commandResultSchema, row.result, `the result of command ${ledgerId}`) : null;
}
