import type { Command } from '../events/inbound';
import type { Prisma } from '../prisma/client/client';
import type { Database, Transaction } from './database';
import { requestsAffectedByDelegation } from './delegations';

/**
 * The pending requests that a directory or configuration change may affect, as workflow ids: they are
 * told to review themselves (re-read approvers and admins, close when no longer allowed) before the
 * change's result goes out.
 */
export async function requestsAffectedBy(db: Database | Transaction, command: Command): Promise<string[]> {
  const pending = async (where: Prisma.AppRequestWhereInput) =>
    (await db.appRequest.findMany({ where: { ...where, status: 'PENDING' }, select: { workflowId: true } })).map((row) => row.workflowId);
  switch (command.type) {
    case 'selfservice.directory.user-upserted.v1': {
      // Besides the user's own requests and the steps they approve: an admin now, or one until now,
      // changes who may decide any request of the org.
      const { orgId, userId, adminRoles } = command.data;
      if (adminRoles.length > 0) return pending({ orgId });
      return pending({ orgId, OR: [{ requesterId: userId }, { currentApproverIds: { has: userId } }, { plan: { path: ['adminIds'], array_contains: [userId] } }] });
    }
    case 'selfservice.directory.group-upserted.v1':
      return pending({ orgId: command.data.orgId });
    case 'selfservice.directory.org-app-upserted.v1':
      return pending({ orgId: command.data.orgId, appId: command.data.appId });
    case 'selfservice.settings.update-requested.v1':
    case 'selfservice.app.self-service-configured.v1':
      return pending(reachOfChange(command.data));
    case 'selfservice.delegation.set-requested.v1':
    case 'selfservice.delegation.cancel-requested.v1':
      // A period in force now re-routes what waits on the user; a cancelled one sends it back.
      return requestsAffectedByDelegation(db, command);
    default:
      // Previews (settings.preview-requested, app.self-service-preview-requested) change nothing and tell no request.
      return [];
  }
}

/**
 * The requests an org settings change (every pending request of the org) or a per-app configuration
 * (those of the app) tells to review themselves; its preview judges the same ones.
 */
export function reachOfChange(change: { orgId: string; appId?: string }): Prisma.AppRequestWhereInput {
  return change.appId === undefined ? { orgId: change.orgId } : { orgId: change.orgId, appId: change.appId };
}

/**
 * `requestsAffectedBy` for many commands: the orgs without pending requests (a first sync) are asked
 * once, not per command.
 */
export async function requestsAffectedByAll(tx: Database | Transaction, commands: readonly Command[]): Promise<string[][]> {
  const orgIds = [...new Set(commands.flatMap((command) => ('orgId' in command.data ? [command.data.orgId] : [])))];
  if (orgIds.length === 0) return commands.map(() => []);
  const pendingOrgs = new Set(
    (await tx.appRequest.findMany({ where: { orgId: { in: orgIds }, status: 'PENDING' }, select: { orgId: true }, distinct: ['orgId'] })).map((row) => row.orgId),
  );
  const affected: string[][] = [];
  for (const command of commands) affected.push('orgId' in command.data && pendingOrgs.has(command.data.orgId) ? await requestsAffectedBy(tx, command) : []);
  return affected;
}
