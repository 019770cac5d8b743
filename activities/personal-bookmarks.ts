import { bookmarkHost } from '../events/bookmark-url';
import type { Command } from '../events/inbound';
import { outboundEvents } from '../events/outbound';
import { CommandRejection, type Accepted, type AuditDraft } from '../rules/commands';
import { personalBookmarkIdFor } from '../rules/identifiers';
import type { Transaction } from './database';
import { isDomainOrSubdomain, personalSignOnProblem, requireActiveUser, requireOrg } from './personal-apps';

/**
 * Personal bookmarks (issue 12 point 8): when the app catalog has no app for a site, a user may put a
 * plain link to it on their own dashboard. Governed by the personal-apps switch (`allowPersonalApps`)
 * and the org's `blockedPersonalDomains`; refused when the site belongs to a catalog app the user could
 * add as a personal app or request as an org app. The URL's form (https, a domain name, no credentials)
 * is the contract's (`events/bookmark-url.ts`): a URL that breaks it never reaches this code. Applied in
 * one transaction through the command catalog (`apply`): no workflow.
 */

export type PersonalBookmarkAddCommand = Extract<Command, { type: 'selfservice.personal-bookmark.add-requested.v1' }>;

/** How many bookmarks one user may keep. */
export const MAX_BOOKMARKS_PER_USER = 200;

/** How many catalog apps matching one host are looked at (a host is one site: a handful at most). */
const CATALOG_MATCHES = 50;

// --- pure rules -----------------------------------------------------------------------------------

/**
 * The host and each parent domain that is still a domain name (two labels at least), longest first:
 * `a.b.example.com` gives `a.b.example.com`, `b.example.com`, `example.com`. A catalog app's or a
 * blocked domain covers the host when it is one of these.
 */
export function domainSuffixes(host: string): string[] {
  const labels = host.toLowerCase().split('.');
  const suffixes: string[] = [];
  for (let start = 0; start <= labels.length - 2; start += 1) suffixes.push(labels.slice(start).join('.'));
  return suffixes;
}

/** The org's blocked domain that covers `host` (as personal apps match them: the domain or a subdomain), or null. */
export function blockedDomainFor(host: string, blockedPersonalDomains: readonly string[]): string | null {
  const covering = blockedPersonalDomains.filter((blocked) => isDomainOrSubdomain(host, blocked));
  return covering.sort((a, b) => b.length - a.length)[0] ?? null;
}

export interface CatalogCandidate {
  id: string;
  name: string;
  signOnModes: readonly string[];
  domains: readonly string[];
}

/** The org's integration of a catalog app, as far as the user's access to it goes. */
export interface OrgAppOfCatalog {
  id: string;
  label: string;
  catalogAppId: string;
  status: string;
  /** Its Self Service option "Allow user to request app" (false when it has no configuration). */
  requestsEnabled: boolean;
}

/** What the user can do about catalog apps today (read in the command's transaction). */
export interface CatalogAccess {
  allowOrgManagedApps: boolean;
  /** The org's integrations of the candidate catalog apps. */
  orgApps: readonly OrgAppOfCatalog[];
  /** Org apps already on the user's dashboard. */
  assignedAppIds: ReadonlySet<string>;
  /** The user's personal apps of the candidate catalog apps, by catalog app id. */
  personalApps: ReadonlyMap<string, { id: string; status: string }>;
}

export interface CatalogInstead {
  code: 'APP_IN_CATALOG';
  message: string;
  details: { catalogAppId: string; catalogAppName: string; availableAs: 'PERSONAL_APP' | 'ORG_APP'; appId?: string; personalAppId?: string };
}

/** The length of the longest of `domains` that covers `host`, or 0. */
function matchLength(host: string, domains: readonly string[]): number {
  return Math.max(0, ...domains.filter((domain) => isDomainOrSubdomain(host, domain)).map((domain) => domain.length));
}

/**
 * The catalog app the user should use instead of a bookmark of `host`, or null when the catalog has no
 * app for it that this user can get. Looked at from the most specific domain match: an app the org
 * manages counts when it is on the user's dashboard or the user may request it (the org's switch on,
 * the app active with requests enabled); an app the org does not manage counts when it can be a
 * personal app (username + password only) and the user has not moved it to Okta Personal. The personal
 * apps switch is on (checked before).
 */
export function catalogAppInstead(host: string, candidates: readonly CatalogCandidate[], access: CatalogAccess): CatalogInstead | null {
  const covering = candidates
    .map((app) => ({ app, length: matchLength(host, app.domains) }))
    .filter(({ length }) => length > 0)
    .sort((a, b) => b.length - a.length || (a.app.id < b.app.id ? -1 : a.app.id > b.app.id ? 1 : 0));
  for (const { app } of covering) {
    const base = { catalogAppId: app.id, catalogAppName: app.name };
    const managed = access.orgApps.filter((orgApp) => orgApp.catalogAppId === app.id).sort((a, b) => (a.id < b.id ? -1 : 1));
    if (managed.length > 0) {
      const assigned = managed.find((orgApp) => access.assignedAppIds.has(orgApp.id));
      if (assigned) {
        return {
          code: 'APP_IN_CATALOG',
          message: `${host} is the site of catalog app ${app.id} (${app.name}), which is already on your dashboard as app ${assigned.id} (${assigned.label}); no bookmark needed`,
          details: { ...base, availableAs: 'ORG_APP', appId: assigned.id },
        };
      }
      const requestable = managed.find((orgApp) => access.allowOrgManagedApps && orgApp.status === 'ACTIVE' && orgApp.requestsEnabled);
      if (requestable) {
        return {
          code: 'APP_IN_CATALOG',
          message: `${host} is the site of catalog app ${app.id} (${app.name}), which the org offers as app ${requestable.id} (${requestable.label}); request that app instead of adding a bookmark`,
          details: { ...base, availableAs: 'ORG_APP', appId: requestable.id },
        };
      }
      continue; // managed by the org but not open to this user: no personal app either (APP_MANAGED_BY_ORG)
    }
    if (personalSignOnProblem(app) !== null) continue;
    const personal = access.personalApps.get(app.id);
    if (personal?.status === 'MOVED') continue; // the user has it in Okta Personal; adding it again is refused
    return {
      code: 'APP_IN_CATALOG',
      message: personal
        ? `${host} is the site of catalog app ${app.id} (${app.name}), which is already on your dashboard as personal app ${personal.id}; no bookmark needed`
        : `${host} is the site of catalog app ${app.id} (${app.name}); add it as a personal app instead of a bookmark`,
      details: { ...base, availableAs: 'PERSONAL_APP', ...(personal ? { personalAppId: personal.id } : {}) },
    };
  }
  return null;
}

// --- command handler ------------------------------------------------------------------------------

async function catalogAccessFor(tx: Transaction, orgId: string, userId: string, candidates: readonly CatalogCandidate[], allowOrgManagedApps: boolean): Promise<CatalogAccess> {
  const catalogAppIds = candidates.map((app) => app.id);
  const orgApps = await tx.orgApp.findMany({
    where: { orgId, catalogAppId: { in: catalogAppIds } },
    select: { id: true, label: true, status: true, catalogAppId: true, selfService: { select: { requestsEnabled: true } } },
  });
  const personalApps = await tx.personalApp.findMany({ where: { userId, catalogAppId: { in: catalogAppIds } }, select: { id: true, catalogAppId: true, status: true } });
  const assigned =
    orgApps.length === 0 ? [] : await tx.appAssignment.findMany({ where: { userId, appId: { in: orgApps.map((app) => app.id) } }, select: { appId: true } });
  return {
    allowOrgManagedApps,
    orgApps: orgApps.map((app) => ({ id: app.id, label: app.label, status: app.status, catalogAppId: app.catalogAppId!, requestsEnabled: app.selfService?.requestsEnabled ?? false })),
    assignedAppIds: new Set(assigned.map((row) => row.appId)),
    personalApps: new Map(personalApps.map((app) => [app.catalogAppId, { id: app.id, status: app.status }])),
  };
}

export async function addPersonalBookmark(tx: Transaction, { commandId, data }: PersonalBookmarkAddCommand): Promise<Accepted> {
  const { orgId, userId, name, url } = data;
  const host = bookmarkHost(url);
  const audit: AuditDraft = { orgId, actorId: userId, action: 'personal-bookmark.add', subject: host };
  const org = await requireOrg(tx, orgId, audit);
  if (!org.settings?.allowPersonalApps) {
    throw new CommandRejection(
      'PERSONAL_APPS_DISABLED',
      `org ${orgId} does not allow users to add personal app integrations or bookmarks (setting allowPersonalApps is off)`,
      audit,
    );
  }
  // One user's adds go one at a time, so that the limit and the one-per-URL rule hold under concurrency.
  await tx.$queryRaw`SELECT 1 FROM "User" WHERE "id" = ${userId} FOR UPDATE`;
  await requireActiveUser(tx, orgId, userId, audit);

  const blocked = blockedDomainFor(host, org.blockedPersonalDomains);
  if (blocked) {
    throw new CommandRejection(
      'BLOCKED_DOMAIN',
      `${host} is in the domain ${blocked}, which org ${orgId} blocks for personal apps and bookmarks`,
      audit,
      { blockedDomain: blocked },
    );
  }

  const candidates = await tx.catalogApp.findMany({
    where: { domains: { hasSome: domainSuffixes(host) } },
    select: { id: true, name: true, signOnModes: true, domains: true },
    orderBy: { id: 'asc' },
    take: CATALOG_MATCHES,
  });
  if (candidates.length > 0) {
    const access = await catalogAccessFor(tx, orgId, userId, candidates, org.settings.allowOrgManagedApps);
    const instead = catalogAppInstead(host, candidates, access);
    if (instead) throw new CommandRejection(instead.code, instead.message, audit, instead.details);
  }

  const existing = await tx.personalBookmark.findUnique({ where: { userId_url: { userId, url } }, select: { id: true, name: true } });
  if (existing) {
    throw new CommandRejection('BOOKMARK_EXISTS', `you already have a bookmark of this URL: ${existing.id} (${existing.name})`, audit, {
      existingBookmarkId: existing.id,
    });
  }
  const count = await tx.personalBookmark.count({ where: { userId } });
  if (count >= MAX_BOOKMARKS_PER_USER) {
    throw new CommandRejection(
      'TOO_MANY_BOOKMARKS',
      `user ${userId} already has ${count} bookmarks, the most one user may keep (${MAX_BOOKMARKS_PER_USER})`,
      audit,
      { limit: MAX_BOOKMARKS_PER_USER },
    );
  }

  const bookmarkId = personalBookmarkIdFor(commandId);
  await tx.personalBookmark.create({ data: { id: bookmarkId, orgId, userId, name, url, host, commandId } });
  return {
    details: { bookmarkId, name, url },
    audit: { ...audit, after: { bookmarkId, host } },
    events: [{ name: 'personal-bookmark-added', ...outboundEvents.personalBookmarkAdded({ orgId, userId, bookmarkId, name, url }) }],
  };
}
