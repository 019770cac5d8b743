import type { AuditEntry } from '../prisma/client/client';
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
