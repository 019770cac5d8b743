import type { Command } from '../events/inbound';
import { OutboundTypes } from '../events/outbound';
import { CommandRejection, type Accepted, type EventDraft } from './command-ledger';
import type { Transaction } from './database';
import { reactToTechnicalContactLeaving } from './org-settings';

/**
 * Directory sync: the backend's own copy of orgs, users, groups, the app catalog and the org's app
 * integrations. Upserts are idempotent (the same data twice changes nothing); ordering per org comes
 * from the Kafka key (orgId) and the ingress handling one record of a partition at a time.
 */

type DirectoryCommand<T extends Command['type']> = Extract<Command, { type: T }>;

async function requireOrg(tx: Transaction, orgId: string): Promise<void> {
  const org = await tx.org.findUnique({ where: { id: orgId }, select: { id: true } });
  if (!org) throw new CommandRejection('ORG_NOT_FOUND', `org ${orgId} is unknown: sync the org before its users, groups and apps`);
}

export async function upsertOrg(
  tx: Transaction,
  { data }: DirectoryCommand<'selfservice.directory.org-upserted.v1'>,
): Promise<Accepted> {
  const kept = {
    ...(data.blockedPersonalDomains ? { blockedPersonalDomains: data.blockedPersonalDomains } : {}),
    ...(data.features?.PERSONAL_APP_MIGRATION !== undefined ? { personalAppMigration: data.features.PERSONAL_APP_MIGRATION } : {}),
  };
  await tx.org.upsert({
    where: { id: data.orgId },
    create: { id: data.orgId, name: data.name, emailDomains: data.emailDomains, blockedPersonalDomains: [], ...kept },
    update: { name: data.name, emailDomains: data.emailDomains, ...kept },
  });
  await tx.orgSettings.upsert({ where: { orgId: data.orgId }, create: { orgId: data.orgId }, update: {} });
  return { details: { orgId: data.orgId } };
}

export async function upsertUser(
  tx: Transaction,
  { data }: DirectoryCommand<'selfservice.directory.user-upserted.v1'>,
): Promise<Accepted> {
  await requireOrg(tx, data.orgId);
  const existing = await tx.user.findUnique({ where: { id: data.userId } });
  if (existing && existing.orgId !== data.orgId) {
    throw new CommandRejection('USER_BELONGS_TO_ANOTHER_ORG', `user ${data.userId} belongs to org ${existing.orgId}, not ${data.orgId}`);
  }
  const fields = {
    orgId: data.orgId,
    email: data.email.toLowerCase(),
    displayName: data.displayName ?? null,
    status: data.status,
    adminRoles: [...new Set(data.adminRoles)],
  };
  await tx.user.upsert({ where: { id: data.userId }, create: { id: data.userId, ...fields }, update: fields });

  if (!existing || existing.status === data.status) return { details: { userId: data.userId } };
  const announced: EventDraft = {
    name: 'user-changed',
    topic: 'directoryChanges',
    type: OutboundTypes.directoryUserChanged,
    key: data.orgId,
    data: { orgId: data.orgId, userId: data.userId, previousStatus: existing.status, status: data.status },
  };
  const settings = data.status === 'ACTIVE' ? {} : await reactToTechnicalContactLeaving(tx, data.orgId, data.userId, data.status);
  return { details: { userId: data.userId }, events: [announced, ...(settings.events ?? [])], audit: settings.audit };
}

export async function upsertGroup(
  tx: Transaction,
  { data }: DirectoryCommand<'selfservice.directory.group-upserted.v1'>,
): Promise<Accepted> {
  await requireOrg(tx, data.orgId);
  const memberIds = [...new Set(data.memberIds)];
  const known = await tx.user.findMany({ where: { id: { in: memberIds }, orgId: data.orgId }, select: { id: true } });
  const knownIds = new Set(known.map((user) => user.id));
  const unknown = memberIds.filter((id) => !knownIds.has(id));
  if (unknown.length > 0) {
    throw new CommandRejection(
      'UNKNOWN_GROUP_MEMBERS',
      `group ${data.groupId} lists users that are not in org ${data.orgId}: ${unknown.slice(0, 20).join(', ')}`,
    );
  }
  const existing = await tx.group.findUnique({ where: { id: data.groupId }, include: { members: true } });
  if (existing && existing.orgId !== data.orgId) {
    throw new CommandRejection('GROUP_BELONGS_TO_ANOTHER_ORG', `group ${data.groupId} belongs to org ${existing.orgId}`);
  }
  await tx.group.upsert({
    where: { id: data.groupId },
    create: { id: data.groupId, orgId: data.orgId, name: data.name },
    update: { name: data.name },
  });
  const before = new Set(existing?.members.map((member) => member.userId) ?? []);
  const removed = [...before].filter((id) => !knownIds.has(id));
  const added = memberIds.filter((id) => !before.has(id));
  if (removed.length > 0) await tx.groupMember.deleteMany({ where: { groupId: data.groupId, userId: { in: removed } } });
  if (added.length > 0) await tx.groupMember.createMany({ data: added.map((userId) => ({ groupId: data.groupId, userId })) });

  const events: EventDraft[] = [];
  if (existing && (removed.length > 0 || added.length > 0)) {
    events.push({
      name: 'group-changed',
      topic: 'directoryChanges',
      type: OutboundTypes.directoryGroupChanged,
      key: data.orgId,
      data: { orgId: data.orgId, groupId: data.groupId, addedMemberIds: added, removedMemberIds: removed },
    });
  }
  return { details: { groupId: data.groupId, memberCount: memberIds.length }, events };
}

export async function upsertCatalogApp(
  tx: Transaction,
  { data }: DirectoryCommand<'selfservice.directory.catalog-app-upserted.v1'>,
): Promise<Accepted> {
  const fields = {
    name: data.name,
    signOnModes: [...new Set(data.signOnModes)],
    requiresPersonalAttributes: data.requiresPersonalAttributes,
  };
  await tx.catalogApp.upsert({ where: { id: data.catalogAppId }, create: { id: data.catalogAppId, ...fields }, update: fields });
  return { details: { catalogAppId: data.catalogAppId } };
}

export async function upsertOrgApp(
  tx: Transaction,
  { data }: DirectoryCommand<'selfservice.directory.org-app-upserted.v1'>,
): Promise<Accepted> {
  await requireOrg(tx, data.orgId);
  if (data.catalogAppId) {
    const catalogApp = await tx.catalogApp.findUnique({ where: { id: data.catalogAppId }, select: { id: true } });
    if (!catalogApp) {
      throw new CommandRejection('CATALOG_APP_NOT_FOUND', `catalog app ${data.catalogAppId} is unknown: sync the catalog first`);
    }
  }
  const existing = await tx.orgApp.findUnique({ where: { id: data.appId } });
  if (existing && existing.orgId !== data.orgId) {
    throw new CommandRejection('APP_BELONGS_TO_ANOTHER_ORG', `app ${data.appId} belongs to org ${existing.orgId}`);
  }
  const fields = {
    orgId: data.orgId,
    label: data.label,
    signOnMode: data.signOnMode,
    status: data.status,
    catalogAppId: data.catalogAppId ?? null,
  };
  await tx.orgApp.upsert({ where: { id: data.appId }, create: { id: data.appId, ...fields }, update: fields });
  return { details: { appId: data.appId } };
}
