import { isDeepStrictEqual } from 'node:util';
import type { Database } from '../../../activities/database';

/**
 * What a refused command must not change. The test database is shared with every other test file
 * (and may be in use by another run), so nothing here counts whole tables: everything is scoped to
 * what one hostile record could touch.
 *
 * - the seeded org's own rows, field by field (updatedAt included: a refused command writes nothing):
 *   the org, its settings, users, groups, apps and their configurations, requests, personal apps;
 * - how many rows the org has in every other state table (group members, request history,
 *   assignments, Technical Contact messages, emails to its domain, audit entries, outbox events
 *   keyed by it that are not command results);
 * - rows whose id holds the case's marker (every id a hostile payload invents holds it): orgs, users,
 *   groups, catalog apps, org apps, personal apps;
 * - everything recorded under the case's ce_id other than its rejection: accepted audit entries,
 *   outbox events that are not results.
 *
 * Left out on purpose: the command ledger (`processedCommand`, id claims), which records rejections.
 */
export interface DbSnapshot {
  counts: Record<string, number>;
  rows: Record<string, unknown>;
}

export interface SnapshotScope {
  orgId: string;
  domain: string;
  /** A string every id invented by the case contains. */
  marker: string;
  /** The case's CloudEvent id. */
  ceId: string;
}

export async function snapshotDb(db: Database, scope: SnapshotScope): Promise<DbSnapshot> {
  const { orgId, domain, marker, ceId } = scope;
  const marked = { contains: marker };
  const [
    groupMembersOfOrg,
    requestEventsOfOrg,
    assignmentsOfOrg,
    messagesOfOrg,
    emailsToOrg,
    emailsSentToOrg,
    auditOfOrg,
    outboxOfOrg,
    orgsMarked,
    usersMarked,
    groupsMarked,
    catalogAppsMarked,
    orgAppsMarked,
    personalAppsMarked,
    acceptedAuditOfCommand,
    outboxOfCommand,
  ] = await Promise.all([
    db.groupMember.count({ where: { group: { orgId } } }),
    db.appRequestEvent.count({ where: { request: { orgId } } }),
    db.appAssignment.count({ where: { orgId } }),
    db.technicalContactMessage.count({ where: { orgId } }),
    db.emailDelivery.count({ where: { recipient: { endsWith: `@${domain}` } } }),
    db.emailDelivery.count({ where: { recipient: { endsWith: `@${domain}` }, sentAt: { not: null } } }),
    db.auditEntry.count({ where: { orgId } }),
    db.outboxEvent.count({ where: { key: orgId, NOT: { topic: 'commandResults' } } }),
    db.org.count({ where: { id: marked } }),
    db.user.count({ where: { id: marked } }),
    db.group.count({ where: { id: marked } }),
    db.catalogApp.count({ where: { id: marked } }),
    db.orgApp.count({ where: { id: marked } }),
    db.personalApp.count({ where: { OR: [{ id: marked }, { catalogAppId: marked }] } }),
    db.auditEntry.count({ where: { commandId: { startsWith: ceId }, outcome: 'ACCEPTED' } }),
    db.outboxEvent.count({ where: { id: { startsWith: ceId }, NOT: { topic: 'commandResults' } } }),
  ]);
  const [org, settings, users, groups, apps, configs, requests, personalApps] = await Promise.all([
    db.org.findUnique({ where: { id: orgId } }),
    db.orgSettings.findUnique({ where: { orgId } }),
    db.user.findMany({ where: { orgId }, orderBy: { id: 'asc' } }),
    db.group.findMany({ where: { orgId }, orderBy: { id: 'asc' } }),
    db.orgApp.findMany({ where: { orgId }, orderBy: { id: 'asc' } }),
    db.appSelfServiceConfig.findMany({ where: { orgId }, orderBy: { appId: 'asc' } }),
    db.appRequest.findMany({
      where: { orgId },
      orderBy: { id: 'asc' },
      select: { id: true, status: true, currentStep: true, currentApproverIds: true, closedReason: true, updatedAt: true },
    }),
    db.personalApp.findMany({ where: { orgId }, orderBy: { id: 'asc' } }),
  ]);
  return {
    counts: {
      groupMembersOfOrg,
      requestEventsOfOrg,
      assignmentsOfOrg,
      messagesOfOrg,
      emailsToOrg,
      emailsSentToOrg,
      auditOfOrg,
      outboxOfOrg,
      orgsMarked,
      usersMarked,
      groupsMarked,
      catalogAppsMarked,
      orgAppsMarked,
      personalAppsMarked,
      acceptedAuditOfCommand,
      outboxOfCommand,
    },
    rows: { org, settings, users, groups, apps, configs, requests, personalApps },
  };
}

/**
 * A snapshot once the database has stopped moving: work started by an earlier command (emails,
 * announcements, a request's next step) may still be landing after its result was published.
 * Stable means three equal snapshots in a row, `intervalMs` apart.
 */
export async function settledSnapshot(db: Database, scope: SnapshotScope, intervalMs = 150, timeoutMs = 10_000): Promise<DbSnapshot> {
  const deadline = Date.now() + timeoutMs;
  let previous = await snapshotDb(db, scope);
  let equal = 0;
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
    const current = await snapshotDb(db, scope);
    equal = isDeepStrictEqual(current, previous) ? equal + 1 : 0;
    if (equal >= 2 || Date.now() > deadline) return current;
    previous = current;
  }
}

/** The parts of two snapshots that differ, by name (for a readable failure). */
export function snapshotDiff(before: DbSnapshot, after: DbSnapshot): Record<string, { before: unknown; after: unknown }> {
  const diff: Record<string, { before: unknown; after: unknown }> = {};
  for (const [name, count] of Object.entries(before.counts)) {
    if (after.counts[name] !== count) diff[`count.${name}`] = { before: count, after: after.counts[name] };
  }
  for (const [name, rows] of Object.entries(before.rows)) {
    if (!isDeepStrictEqual(rows, after.rows[name])) diff[`rows.${name}`] = { before: rows, after: after.rows[name] };
  }
  return diff;
}
