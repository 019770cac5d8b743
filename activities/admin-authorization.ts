import type { AuditDraft } from '../rules/commands';
import { CommandRejection } from '../rules/commands';
import type { Database, Transaction } from './database';

export type AdminRole = 'SUPER_ADMIN' | 'APP_ADMIN' | 'READ_ONLY_ADMIN';

/**
 * Checks that the actor is an active admin of the org with one of the roles. Every refusal names the
 * reason and carries the audit entry, so the attempt is recorded even though nothing changes.
 */
export async function requireAdmin(
  tx: Transaction,
  {
    orgId,
    actorId,
    roles,
    action,
    subject,
    appId,
  }: { orgId: string; actorId: string; roles: AdminRole[]; action: string; subject?: string; /** The app acted on: an APP_ADMIN must administer it. */ appId?: string },
): Promise<void> {
  const audit: AuditDraft = { orgId, actorId, action, subject };
  const org = await tx.org.findUnique({ where: { id: orgId }, select: { id: true, provisional: true } });
  if (!org) throw new CommandRejection('ORG_NOT_FOUND', `org ${orgId} is unknown`, audit);
  // Known only from its users, groups or apps that arrived first: nothing is administered before its org-upserted.
  if (org.provisional) throw new CommandRejection('ORG_NOT_FOUND', `org ${orgId} has not been synced yet (only its users, groups or apps have)`, audit);

  const actor = await tx.user.findUnique({ where: { id: actorId } });
  const needed = roles.join(' or ');
  if (!actor) {
    throw new CommandRejection('NOT_AUTHORIZED', `actor ${actorId} is not a user of org ${orgId}; only a ${needed} may do this`, audit);
  }
  if (actor.orgId !== orgId) {
    throw new CommandRejection('NOT_AUTHORIZED', `actor ${actorId} belongs to another org; only a ${needed} of org ${orgId} may do this`, audit);
  }
  if (actor.status !== 'ACTIVE') {
    throw new CommandRejection('NOT_AUTHORIZED', `actor ${actorId} is ${actor.status}; only an active ${needed} may do this`, audit);
  }
  if (!actor.adminRoles.some((role) => (roles as string[]).includes(role))) {
    const held = actor.adminRoles.length > 0 ? actor.adminRoles.join(', ') : 'no admin role';
    throw new CommandRejection('NOT_AUTHORIZED', `actor ${actorId} has ${held}; only a ${needed} may do this`, audit);
  }
  if (appId !== undefined && !administers(actor, appId)) {
    throw new CommandRejection('NOT_AUTHORIZED', `actor ${actorId} is an app admin of other apps, not of ${appId}`, audit);
  }
}

/** Whether an admin administers an app: a super admin every app, an app admin those listed (all when none is). */
export function administers(user: { adminRoles: string[]; adminAppIds: string[] }, appId: string): boolean {
  if (user.adminRoles.includes('SUPER_ADMIN')) return true;
  if (!user.adminRoles.includes('APP_ADMIN')) return false;
  return user.adminAppIds.length === 0 || user.adminAppIds.includes(appId);
}

/** The active admins who may decide or administer requests for an app (never the requester). */
export async function requestAdminsOf(tx: Transaction | Database, { orgId, appId, requesterId }: { orgId: string; appId: string; requesterId: string }): Promise<string[]> {
  const admins = await tx.user.findMany({
    where: { orgId, status: 'ACTIVE', OR: [{ adminRoles: { has: 'SUPER_ADMIN' } }, { adminRoles: { has: 'APP_ADMIN' } }], NOT: { id: requesterId } },
    select: { id: true, adminRoles: true, adminAppIds: true },
  });
  return admins.filter((admin) => administers(admin, appId)).map((admin) => admin.id).sort();
}
