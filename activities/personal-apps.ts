import { randomUUID } from 'node:crypto';
import type { Command } from '../events/inbound';
import { outboundEvents, type NotEligibleReason, type PersonalAppMoveResult } from '../events/outbound';
import { recordCommand } from './command-ledger';
import { CommandRejection, type Accepted, type AuditDraft, type CommandResult } from '../rules/commands';
import type { Database, Transaction } from './database';

/**
 * Personal app integrations (spec section 1, switch 2) and their move to Okta Personal (switch 4).
 * A personal app is a catalog app the user added for themselves: only they see the tile, no approval,
 * and no credential ever reaches this backend (the tile records the username and whether credentials
 * were set on the user's side).
 */

type PersonalAppCommand<T extends Command['type']> = Extract<Command, { type: T }>;
export type PersonalAppAddCommand = PersonalAppCommand<'selfservice.personal-app.add-requested.v1'>;
export type PersonalAppMoveCommand = PersonalAppCommand<'selfservice.personal-app.move-requested.v1'>;

// --- pure rules -----------------------------------------------------------------------------------

/** Sign-on modes where the only thing exchanged with the app is a username and password the user sets. */
export const PASSWORD_ONLY_SIGN_ON_MODES: ReadonlySet<string> = new Set(['SWA', 'BASIC_AUTH']);
/** Sign-on modes that need a federation set up between the org and the app by an admin. */
export const FEDERATED_SIGN_ON_MODES: ReadonlySet<string> = new Set(['SAML', 'OIDC', 'WS_FEDERATION']);

export interface RuleProblem {
  code: string;
  message: string;
}

/**
 * Why a catalog app cannot be a personal app, or null when it can: every sign-on mode it offers must be
 * username + password. Anything federated, or that an admin must configure (a secure password store
 * template, a bookmark URL), is org work and goes through "Request an app" instead.
 */
export function personalSignOnProblem(app: { id: string; signOnModes: readonly string[] }): RuleProblem | null {
  const federated = app.signOnModes.filter((mode) => FEDERATED_SIGN_ON_MODES.has(mode));
  if (federated.length > 0) {
    return {
      code: 'APP_NEEDS_FEDERATION',
      message: `catalog app ${app.id} signs on with ${federated.join(', ')}, which needs federation set up by an admin; ask for it through "Request an app"`,
    };
  }
  const configured = app.signOnModes.filter((mode) => !PASSWORD_ONLY_SIGN_ON_MODES.has(mode));
  if (configured.length > 0 || app.signOnModes.length === 0) {
    const modes = configured.length > 0 ? configured.join(', ') : 'no sign-on mode';
    return {
      code: 'APP_NEEDS_ADMIN_CONFIGURATION',
      message: `catalog app ${app.id} has ${modes}, which an admin must configure; only username + password apps can be added as personal apps`,
    };
  }
  return null;
}

/** The lower-cased domain of an email-like username, or null when the username is not an email address. */
export function emailDomainOf(username: string | null | undefined): string | null {
  if (!username) return null;
  const match = /^[^\s@]+@([^\s@]+\.[^\s@]+)$/.exec(username.trim());
  return match?.[1] ? match[1].toLowerCase() : null;
}

/** True when `domain` is `parent` or one of its subdomains (an app on the org's subdomain is the org's). */
export function isDomainOrSubdomain(domain: string, parent: string): boolean {
  const p = parent.toLowerCase();
  return domain === p || domain.endsWith(`.${p}`);
}

/** What becomes of one app of a move: part of the public contract (events/outbound.ts). */
export type MoveVerdict = PersonalAppMoveResult;
export type MoveOutcome = MoveVerdict['outcome'];
export type { NotEligibleReason };

export interface MoveCandidate {
  id: string;
  userId: string;
  username: string | null;
  status: string;
}

export interface MovePolicy {
  userId: string;
  orgEmailDomains: readonly string[];
  blockedPersonalDomains: readonly string[];
  /** Ids of the org's own app integrations (org-managed, also those users got through self service). */
  orgAppIds: ReadonlySet<string>;
}

/**
 * Whether one app may move to Okta Personal: only a personal app this user added, still on the
 * workforce side, whose username is a personal email address (not the org's domains or subdomains,
 * not a blocked domain).
 */
export function moveVerdict(personalAppId: string, app: MoveCandidate | null, policy: MovePolicy): MoveVerdict {
  const refuse = (reason: NotEligibleReason, detail: string): MoveVerdict => ({ personalAppId, outcome: 'NOT_ELIGIBLE', reason, detail });
  if (!app) {
    return policy.orgAppIds.has(personalAppId)
      ? refuse('ORG_MANAGED_APP', 'org-managed app integrations are never moved to Okta Personal')
      : refuse('PERSONAL_APP_NOT_FOUND', 'no personal app with this id');
  }
  if (app.userId !== policy.userId) return refuse('NOT_ADDED_BY_USER', 'only personal apps the user added themselves can be moved');
  if (app.status === 'MOVED') return refuse('ALREADY_MOVED', 'this app was already moved to Okta Personal');
  if (!app.username) return refuse('NO_USERNAME', 'the app has no username, so it does not use a personal email address');
  const domain = emailDomainOf(app.username);
  if (!domain) return refuse('USERNAME_NOT_AN_EMAIL', 'the username is not an email address, so it is not a personal email address');
  if (policy.orgEmailDomains.some((orgDomain) => isDomainOrSubdomain(domain, orgDomain))) {
    return refuse('ORG_EMAIL_DOMAIN', `the username uses the org's email domain ${domain}`);
  }
  if (policy.blockedPersonalDomains.some((blocked) => isDomainOrSubdomain(domain, blocked))) {
    return refuse('BLOCKED_DOMAIN', `the username's domain ${domain} is blocked by the org for personal apps`);
  }
  return { personalAppId, outcome: 'MOVED' };
}

/** Each id once, in the order the user listed them. */
export function distinctIds(ids: readonly string[]): string[] {
  return [...new Set(ids)];
}

// --- command handlers -----------------------------------------------------------------------------

export async function requireOrg(tx: Transaction, orgId: string, audit: AuditDraft) {
  const org = await tx.org.findUnique({ where: { id: orgId }, include: { settings: true } });
  if (!org) throw new CommandRejection('ORG_NOT_FOUND', `org ${orgId} is unknown`, audit);
  return org;
}

export async function requireActiveUser(tx: Transaction, orgId: string, userId: string, audit: AuditDraft): Promise<void> {
  const user = await tx.user.findUnique({ where: { id: userId }, select: { orgId: true, status: true } });
  if (!user || user.orgId !== orgId) throw new CommandRejection('USER_NOT_FOUND', `user ${userId} is not a user of org ${orgId}`, audit);
  if (user.status !== 'ACTIVE') throw new CommandRejection('USER_NOT_ACTIVE', `user ${userId} is ${user.status}; only active users can do this`, audit);
}

export async function addPersonalApp(tx: Transaction, { commandId, data }: PersonalAppAddCommand): Promise<Accepted> {
  const { orgId, userId, catalogAppId, username } = data;
  const audit: AuditDraft = { orgId, actorId: userId, action: 'personal-app.add', subject: catalogAppId };
  const org = await requireOrg(tx, orgId, audit);
  if (!org.settings?.allowPersonalApps) {
    throw new CommandRejection(
      'PERSONAL_APPS_DISABLED',
      `org ${orgId} does not allow users to add personal app integrations (setting allowPersonalApps is off)`,
      audit,
    );
  }
  await requireActiveUser(tx, orgId, userId, audit);

  const catalogApp = await tx.catalogApp.findUnique({ where: { id: catalogAppId } });
  if (!catalogApp) throw new CommandRejection('CATALOG_APP_NOT_FOUND', `catalog app ${catalogAppId} is not in the app catalog`, audit);
  const managed = await tx.orgApp.findFirst({ where: { orgId, catalogAppId }, select: { id: true } });
  if (managed) {
    throw new CommandRejection(
      'APP_MANAGED_BY_ORG',
      `org ${orgId} already manages catalog app ${catalogAppId} as app ${managed.id}; request that app instead of adding it as a personal app`,
      audit,
    );
  }
  const signOn = personalSignOnProblem(catalogApp);
  if (signOn) throw new CommandRejection(signOn.code, signOn.message, audit);

  const existing = await tx.personalApp.findUnique({ where: { userId_catalogAppId: { userId, catalogAppId } } });
  if (existing?.status === 'MOVED') {
    throw new CommandRejection(
      'PERSONAL_APP_MOVED',
      `catalog app ${catalogAppId} was moved to Okta Personal as personal app ${existing.id}; use it there`,
      audit,
    );
  }
  if (existing) {
    // Same tile as before: accepted again, but nothing new to announce.
    return {
      details: { personalAppId: existing.id, catalogAppId, alreadyAdded: true },
      audit: { ...audit, after: { personalAppId: existing.id, alreadyAdded: true } },
    };
  }

  const personalAppId = `pa-${randomUUID()}`;
  await tx.personalApp.create({
    data: { id: personalAppId, orgId, userId, catalogAppId, username: username ?? null, credentialsSet: false, commandId },
  });
  return {
    details: { personalAppId, catalogAppId, alreadyAdded: false },
    audit: { ...audit, after: { personalAppId, catalogAppId, usernameSet: username !== undefined } },
    events: [
      {
        name: 'personal-app-added',
        ...outboundEvents.personalAppAdded({ orgId, userId, personalAppId, catalogAppId, ...(username !== undefined ? { username } : {}), credentialsSet: false }),
      },
    ],
  };
}

export async function movePersonalApps(tx: Transaction, { data }: PersonalAppMoveCommand): Promise<Accepted> {
  const { orgId, userId, removeFromDashboard } = data;
  const audit: AuditDraft = { orgId, actorId: userId, action: 'personal-app.move', subject: data.personalAppIds.join(',').slice(0, 500) };
  const org = await requireOrg(tx, orgId, audit);
  if (!org.settings?.allowMoveToOktaPersonal) {
    throw new CommandRejection(
      'MOVE_TO_OKTA_PERSONAL_DISABLED',
      `org ${orgId} does not allow users to move apps to Okta Personal (setting allowMoveToOktaPersonal is off)`,
      audit,
    );
  }
  if (!org.personalAppMigration) {
    throw new CommandRejection(
      'PERSONAL_APP_MIGRATION_NOT_ENABLED',
      `the PERSONAL_APP_MIGRATION feature is not enabled for org ${orgId}; ask support to enable it`,
      audit,
    );
  }
  await requireActiveUser(tx, orgId, userId, audit);

  const ids = distinctIds(data.personalAppIds);
  const apps = await tx.personalApp.findMany({ where: { id: { in: ids }, orgId } });
  const orgApps = await tx.orgApp.findMany({ where: { id: { in: ids }, orgId }, select: { id: true } });
  const byId = new Map(apps.map((app) => [app.id, app]));
  const policy: MovePolicy = {
    userId,
    orgEmailDomains: org.emailDomains,
    blockedPersonalDomains: org.blockedPersonalDomains,
    orgAppIds: new Set(orgApps.map((app) => app.id)),
  };
  const results = ids.map((id) => moveVerdict(id, byId.get(id) ?? null, policy));

  const movedIds = results.filter((result) => result.outcome === 'MOVED').map((result) => result.personalAppId);
  if (movedIds.length > 0) {
    await tx.personalApp.updateMany({
      where: { id: { in: movedIds }, status: 'ACTIVE' },
      data: { status: 'MOVED', movedAt: new Date(), ...(removeFromDashboard ? { onDashboard: false } : {}) },
    });
  }
  // The hand-off to Okta Personal: what it needs to recreate each tile (never a credential).
  const exported = movedIds.map((id) => {
    const app = byId.get(id)!;
    return { personalAppId: id, catalogAppId: app.catalogAppId, username: app.username };
  });
  return {
    details: { results, moved: movedIds.length, notEligible: results.length - movedIds.length },
    audit: { ...audit, after: { results, removeFromDashboard } },
    events: [
      {
        name: 'personal-apps-moved',
        ...outboundEvents.personalAppsMoved({ orgId, userId, results, exported, removeFromDashboard }),
      },
    ],
  };
}

// --- activities -----------------------------------------------------------------------------------

export function createPersonalAppActivities({ db }: { db: Database }) {
  return {
    async applyPersonalAppAdd(command: PersonalAppAddCommand, workflowId: string): Promise<CommandResult> {
      return recordCommand(db, command, async (tx, cmd) => withWorkflowId(await addPersonalApp(tx, cmd), workflowId));
    },
    async applyPersonalAppMove(command: PersonalAppMoveCommand, workflowId: string): Promise<CommandResult> {
      return recordCommand(db, command, async (tx, cmd) => withWorkflowId(await movePersonalApps(tx, cmd), workflowId));
    },
  };
}

function withWorkflowId(accepted: Accepted, workflowId: string): Accepted {
  return { ...accepted, details: { ...accepted.details, workflowId } };
}
