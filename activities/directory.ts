import type { Command } from '../events/inbound';
import { outboundEvents } from '../events/outbound';
import { CommandRejection, type Accepted, type EventDraft } from '../rules/commands';
import type { Transaction } from './database';
import { reactToTechnicalContactLeaving } from './org-settings';

/**
 * Directory sync: the backend's own copy of orgs, users, groups, the app catalog and the org's app
 * integrations. Upserts are idempotent (the same data twice changes nothing). The events of one org
 * share a Kafka key (orgId) and the ingress handles one record of a partition at a time, so repeated
 * upserts of one org end in the state of the last one.
 *
 * Order independence: a connector may still send orgs, users, groups, catalog apps and org apps in any
 * order (catalog events carry no org and land on other partitions, connectors resend out of order),
 * and nothing is refused for arriving early. Whatever the order, the same set of upserts ends in the
 * same rows:
 * - a user, group or org app whose org is not synced yet creates the org as a provisional placeholder
 *   (see `ensureOrg`), which the org's own org-upserted fills in,
 * - a group may list users that are not synced yet: they are stored as members (GroupMember has no
 *   foreign key to User) and are members as soon as they arrive. Readers join members on User with
 *   the org and status, so a member without a User row is never an active user (nor an approver),
 * - an org app may name a catalog app that is not synced yet: `catalogAppId` is a plain reference
 *   that resolves when the catalog app arrives.
 * Ownership is still enforced: an id is unique across orgs, so a user, group or app id that belongs
 * to another org, or a group member who is a user of another org, is refused with its code.
 */

type DirectoryCommand<T extends Command['type']> = Extract<Command, { type: T }>;

/**
 * Makes sure the org exists, creating it as a provisional placeholder when a user, group or org app
 * arrives before the org's own org-upserted: name = the org id, no email domains, no blocked personal
 * domains, features off, and no OrgSettings row. The org-upserted fills it in and clears `provisional`.
 *
 * What a provisional org may do: nothing beyond holding its directory rows. Its users cannot act in it:
 * - without a settings row its four Self Service switches read as off and stay at their defaults:
 *   app requests are refused (ORG_NOT_FOUND, as before the sync), personal apps, moves to Okta Personal
 *   and Technical Contact messages are refused as disabled,
 * - it has no email domains, so nothing is matched against its domains,
 * - admin commands (settings, per-app configuration, request administration) go through
 *   `requireAdmin`, which must treat a provisional org as not synced yet (ORG_NOT_FOUND), so that its
 *   settings stay at their defaults until the org is synced.
 * Directory events keep flowing: its users, groups and org apps are written as sent.
 *
 * The insert is `ON CONFLICT DO NOTHING`: an existing org (provisional or not) is left as it is.
 */
async function ensureOrg(tx: Transaction, orgId: string): Promise<void> {
  await tx.org.createMany({
    data: [{ id: orgId, name: orgId, emailDomains: [], blockedPersonalDomains: [], provisional: true }],
    skipDuplicates: true,
  });
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
    update: { name: data.name, emailDomains: data.emailDomains, provisional: false, ...kept },
  });
  await tx.orgSettings.upsert({ where: { orgId: data.orgId }, create: { orgId: data.orgId }, update: {} });
  return { details: { orgId: data.orgId } };
}

type UserData = DirectoryCommand<'selfservice.directory.user-upserted.v1'>['data'];

/** A user's row as the directory sends it: email in lower case, roles and app ids without repeats. */
function userFields(data: UserData) {
  return {
    orgId: data.orgId,
    email: data.email.toLowerCase(),
    displayName: data.displayName ?? null,
    status: data.status,
    adminRoles: [...new Set(data.adminRoles)],
    adminAppIds: [...new Set(data.adminAppIds)].sort(),
    // Omitted: the stored manager stays (a sync that does not know managers wipes none); null: none.
    ...(data.managerId !== undefined ? { managerId: data.managerId } : {}),
  };
}

function userOfAnotherOrg(data: UserData, orgId: string): CommandRejection {
  return new CommandRejection('USER_BELONGS_TO_ANOTHER_ORG', `user ${data.userId} belongs to org ${orgId}, not ${data.orgId}`);
}

export async function upsertUser(
  tx: Transaction,
  { data }: DirectoryCommand<'selfservice.directory.user-upserted.v1'>,
): Promise<Accepted> {
  const existing = await tx.user.findUnique({ where: { id: data.userId } });
  if (existing && existing.orgId !== data.orgId) throw userOfAnotherOrg(data, existing.orgId);
  await ensureOrg(tx, data.orgId);
  const fields = userFields(data);
  await tx.user.upsert({ where: { id: data.userId }, create: { id: data.userId, ...fields }, update: fields });

  if (!existing || existing.status === data.status) return { details: { userId: data.userId } };
  const announced: EventDraft = {
    name: 'user-changed',
    ...outboundEvents.directoryUserChanged({ orgId: data.orgId, userId: data.userId, previousStatus: existing.status, status: data.status }),
  };
  const settings = data.status === 'ACTIVE' ? {} : await reactToTechnicalContactLeaving(tx, data.orgId, data.userId, data.status);
  return { details: { userId: data.userId }, events: [announced, ...(settings.events ?? [])], audit: settings.audit };
}

/**
 * A run of user upserts at once (a directory sync, `ManyHandler`): every user written by one statement.
 * A run in which a user changes status (which has effects of its own: an announcement, the Technical
 * Contact), or that names one user twice, is handed back, to go one command at a time.
 */
export async function upsertUsers(
  tx: Transaction,
  commands: readonly DirectoryCommand<'selfservice.directory.user-upserted.v1'>[],
): Promise<(Accepted | CommandRejection)[] | null> {
  // One user twice in a run: the later upsert must see the earlier one, so one at a time.
  if (new Set(commands.map(({ data }) => data.userId)).size < commands.length) return null;
  const existing = new Map(
    (await tx.user.findMany({ where: { id: { in: commands.map(({ data }) => data.userId) } }, select: { id: true, orgId: true, status: true } })).map((user) => [user.id, user]),
  );
  const outcomes: (Accepted | CommandRejection)[] = [];
  const rows: ({ id: string; managerGiven: boolean } & ReturnType<typeof userFields>)[] = [];
  for (const { data } of commands) {
    const known = existing.get(data.userId);
    if (known && known.orgId !== data.orgId) {
      outcomes.push(userOfAnotherOrg(data, known.orgId));
      continue;
    }
    if (known && known.status !== data.status) return null;
    outcomes.push({ details: { userId: data.userId } });
    rows.push({ id: data.userId, managerGiven: data.managerId !== undefined, ...userFields(data) });
  }
  for (const orgId of new Set(rows.map((row) => row.orgId))) await ensureOrg(tx, orgId);
  if (rows.length > 0) {
    await tx.$executeRaw`
      INSERT INTO "User" ("id", "orgId", "email", "displayName", "status", "adminRoles", "adminAppIds", "managerId", "updatedAt")
      SELECT "id", "orgId", "email", "displayName", "status", "adminRoles", "adminAppIds",
        CASE WHEN given."managerGiven" THEN given."managerId" ELSE (SELECT stored."managerId" FROM "User" AS stored WHERE stored."id" = given."id") END,
        now()
      FROM json_to_recordset(${JSON.stringify(rows)}::json)
        AS given("id" text, "orgId" text, "email" text, "displayName" text, "status" "UserStatus", "adminRoles" text[], "adminAppIds" text[], "managerId" text, "managerGiven" boolean)
      ON CONFLICT ("id") DO UPDATE SET
        "orgId" = excluded."orgId", "email" = excluded."email", "displayName" = excluded."displayName", "status" = excluded."status",
        "adminRoles" = excluded."adminRoles", "adminAppIds" = excluded."adminAppIds", "managerId" = excluded."managerId", "updatedAt" = excluded."updatedAt"`;
  }
  return outcomes;
}

export async function upsertGroup(
  tx: Transaction,
  { data }: DirectoryCommand<'selfservice.directory.group-upserted.v1'>,
): Promise<Accepted> {
  const memberIds = [...new Set(data.memberIds)];
  const existing = await tx.group.findUnique({ where: { id: data.groupId }, include: { members: true } });
  if (existing && existing.orgId !== data.orgId) {
    throw new CommandRejection('GROUP_BELONGS_TO_ANOTHER_ORG', `group ${data.groupId} belongs to org ${existing.orgId}`);
  }
  // Members not synced yet are kept. Users already known to be of another org never can be members.
  const foreign = await tx.user.findMany({
    where: { id: { in: memberIds }, NOT: { orgId: data.orgId } },
    select: { id: true, orgId: true },
    orderBy: { id: 'asc' },
  });
  if (foreign.length > 0) {
    throw new CommandRejection(
      'GROUP_MEMBER_BELONGS_TO_ANOTHER_ORG',
      `group ${data.groupId} of org ${data.orgId} lists users of another org: ${foreign
        .slice(0, 20)
        .map((user) => `${user.id} (org ${user.orgId})`)
        .join(', ')}`,
    );
  }
  await ensureOrg(tx, data.orgId);
  await tx.group.upsert({
    where: { id: data.groupId },
    create: { id: data.groupId, orgId: data.orgId, name: data.name },
    update: { name: data.name },
  });
  const wanted = new Set(memberIds);
  const before = new Set(existing?.members.map((member) => member.userId) ?? []);
  const removed = [...before].filter((id) => !wanted.has(id));
  const added = memberIds.filter((id) => !before.has(id));
  if (removed.length > 0) await tx.groupMember.deleteMany({ where: { groupId: data.groupId, userId: { in: removed } } });
  if (added.length > 0) await tx.groupMember.createMany({ data: added.map((userId) => ({ groupId: data.groupId, userId })) });

  const events: EventDraft[] = [];
  if (existing && (removed.length > 0 || added.length > 0)) {
    events.push({
      name: 'group-changed',
      ...outboundEvents.directoryGroupChanged({ orgId: data.orgId, groupId: data.groupId, addedMemberIds: added, removedMemberIds: removed }),
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
    // Omitted: keep the stored domains (a connector that does not know them cannot wipe them).
    ...(data.domains !== undefined ? { domains: [...new Set(data.domains)] } : {}),
  };
  await tx.catalogApp.upsert({ where: { id: data.catalogAppId }, create: { id: data.catalogAppId, ...fields }, update: fields });
  return { details: { catalogAppId: data.catalogAppId } };
}

export async function upsertOrgApp(
  tx: Transaction,
  { data }: DirectoryCommand<'selfservice.directory.org-app-upserted.v1'>,
): Promise<Accepted> {
  const existing = await tx.orgApp.findUnique({ where: { id: data.appId } });
  if (existing && existing.orgId !== data.orgId) {
    throw new CommandRejection('APP_BELONGS_TO_ANOTHER_ORG', `app ${data.appId} belongs to org ${existing.orgId}`);
  }
  await ensureOrg(tx, data.orgId);
  // catalogAppId is not checked: it may name a catalog app that is not synced yet.
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
