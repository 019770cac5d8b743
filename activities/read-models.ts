import { Prisma, type AuditEntry } from '../prisma/client/client';
import type { ChainedAuditEntry } from '../rules/audit-chain';
import type { Database } from './database';

/**
 * Read models: what the admin's Available Apps pane and the end user's Add apps screen show, and the
 * audit trail of an org. Plain queries over the tables the commands write.
 */

export interface AvailableApp {
  appId: string;
  label: string;
  approval: 'On' | 'Off';
  noteForRequester: string | null;
  approverSteps: number;
}

export async function listAvailableApps(db: Database, orgId: string): Promise<AvailableApp[]> {
  const configs = await db.appSelfServiceConfig.findMany({
    where: { orgId, requestsEnabled: true, app: { status: 'ACTIVE' } },
    include: { app: true },
    orderBy: { app: { label: 'asc' } },
  });
  return configs.map((config) => ({
    appId: config.appId,
    label: config.app.label,
    approval: config.approvalRequired ? 'On' : 'Off',
    noteForRequester: config.noteForRequester,
    approverSteps: Array.isArray(config.approverSteps) ? config.approverSteps.length : 0,
  }));
}

export interface AuditRecord {
  at: string;
  actorId: string;
  action: string;
  outcome: string;
  code: string | null;
  message: string | null;
  subject: string | null;
  before: unknown;
  after: unknown;
  commandId: string | null;
}

export async function listAuditTrail(db: Database, orgId: string, limit = 100): Promise<AuditRecord[]> {
  const rows = await db.auditEntry.findMany({ where: { orgId }, orderBy: { id: 'desc' }, take: limit });
  return rows.map(auditRecordOf);
}

/**
 * An audit row as the export writes it (the CLI's `audit export`, one JSON line each): its id and org
 * (the export spans orgs), its content, and its place in the org's hash chain (null until the audit
 * sealer has chained it). The chain's hash covers every field but `hash` (rules/audit-chain.ts).
 */
export interface AuditExportRecord extends AuditRecord, ChainedAuditEntry {
  id: string;
  orgId: string;
  chainSequence: number | null;
  previousHash: string | null;
  hash: string | null;
}

export function auditExportRecordOf(row: AuditEntry): AuditExportRecord {
  const { at, ...rest } = auditRecordOf(row);
  // The export's field order.
  return {
    id: row.id.toString(),
    at,
    orgId: row.orgId,
    ...rest,
    chainSequence: row.chainSequence === null ? null : Number(row.chainSequence),
    previousHash: row.previousHash,
    hash: row.hash,
  };
}

/** An audit row as the read models give it out. */
export function auditRecordOf(row: AuditEntry): AuditRecord {
  return {
    at: row.at.toISOString(),
    actorId: row.actorId,
    action: row.action,
    outcome: row.outcome,
    code: row.code,
    message: row.message,
    subject: row.subject,
    before: row.before,
    after: row.after,
    commandId: row.commandId,
  };
}

/** How many users have a catalog app as a personal app. */
export interface PersonalAppUsage {
  catalogAppId: string;
  /** The catalog app's name; null when the catalog app is not synced (any more). */
  name: string | null;
  users: number;
}

export interface PersonalAppUsageFilter {
  /** One org's users only (what an org admin may see); omitted: every org (a platform operator's view). */
  orgId?: string;
  /** The first `limit` apps by users. */
  limit: number;
}

/**
 * Personal app usage per catalog app: how many users have it as a personal app, most used first (then
 * by catalog app id). Counts the tiles on the workforce side (status ACTIVE): a tile moved to Okta
 * Personal left the org's dashboard and no longer counts. One row per user and catalog app (unique
 * key), so the rows counted are distinct users. Grouped in the database over the index
 * (catalogAppId, orgId, status); one org's rows come through the index on orgId.
 */
export async function listPersonalAppUsage(db: Database, filter: PersonalAppUsageFilter): Promise<PersonalAppUsage[]> {
  const inOrg = filter.orgId === undefined ? Prisma.empty : Prisma.sql`AND p."orgId" = ${filter.orgId}`;
  return db.$queryRaw<PersonalAppUsage[]>`
    SELECT u."catalogAppId", c."name", u."users"
    FROM (
      SELECT p."catalogAppId", COUNT(*)::int AS "users"
      FROM "PersonalApp" p
      WHERE p."status" = 'ACTIVE' ${inOrg}
      GROUP BY p."catalogAppId"
    ) u
    LEFT JOIN "CatalogApp" c ON c."id" = u."catalogAppId"
    ORDER BY u."users" DESC, u."catalogAppId" ASC
    LIMIT ${filter.limit}`;
}
