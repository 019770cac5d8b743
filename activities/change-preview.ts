import { Buffer } from 'node:buffer';
import type { Command } from '../events/inbound';
import type { ChangePreview, PreviewClose, PreviewReroute, PreviewTurnOff, SettingsSnapshot } from '../events/outbound';
import { closingReason, reroutedTo, reviewSourcesOf, stepVerdict, type ReviewFacts } from '../rules/app-request';
import { requestPlanSchema } from '../rules/request-plan';
import type { Accepted } from '../rules/commands';
import { reachOfChange } from './affected-requests';
import { checkAppConfiguration, configChanges } from './app-configuration';
import { resolveApprovers } from './approvers';
import type { Prisma } from '../prisma/client/client';
import type { Transaction } from './database';
import { checkSettingsChange } from './org-settings';

/**
 * Dry runs of the risky admin changes (an org settings change, a per-app configuration): the same
 * checks as the change (who may make it may preview it, and a refusal has the change's code), then
 * every pending request the change would tell to review itself is judged by the rules the request's
 * own review uses (rules/app-request.ts: closingReason, stepVerdict, reroutedTo), against the settings,
 * configuration and directory as the change would leave them. Nothing is written but the preview's
 * result and its audit entry: no settings row, no version, no review signal, no settings event.
 */

/** At most this many entries per list of a preview; the totals count them all. */
export const PREVIEW_LIST_LIMIT = 500;
/** And at most about this many bytes of list entries together, so the result stays a small Kafka record. */
export const PREVIEW_LIST_BUDGET_BYTES = 256 * 1024;
/** Pending requests are read this many at a time. */
const PAGE_SIZE = 500;
/** An id no user has: approvers resolved for "no requester", shared by every request of a step. */
const NOBODY = '';

type CommandOf<T extends Command['type']> = Extract<Command, { type: T }>;

/** The bounded lists of a preview. */
class PreviewLists {
  readonly wouldClose: PreviewClose[] = [];
  readonly wouldReroute: PreviewReroute[] = [];
  wouldCloseTotal = 0;
  wouldRerouteTotal = 0;
  truncated = false;
  private bytes = 0;

  close(entry: PreviewClose): void {
    this.wouldCloseTotal += 1;
    this.keep(this.wouldClose, entry);
  }

  reroute(entry: PreviewReroute): void {
    this.wouldRerouteTotal += 1;
    this.keep(this.wouldReroute, entry);
  }

  private keep<T>(list: T[], entry: T): void {
    const size = Buffer.byteLength(JSON.stringify(entry)) + 1;
    if (list.length >= PREVIEW_LIST_LIMIT || this.bytes + size > PREVIEW_LIST_BUDGET_BYTES) {
      this.truncated = true;
      return;
    }
    list.push(entry);
    this.bytes += size;
  }
}

/** What the change would leave different from the database, for the judgement of pending requests. */
interface Proposed {
  orgId: string;
  /** The org switch as a settings change would leave it. */
  allowOrgManagedApps?: boolean;
  /** The app's configuration as a per-app change would leave it. */
  app?: { appId: string; requestsEnabled: boolean; approvalRequired: boolean; fallbackApproverIds: string[] };
}

type StoredApp = Prisma.OrgAppGetPayload<{ include: { selfService: true } }>;

/**
 * Judges every pending request in `where` as its review would after the change: closed (with the
 * reason it would give) or re-routed (its current step's approvers resolved again differ from those
 * it waits on). Returns how many were judged.
 */
async function judgePendingRequests(tx: Transaction, where: Prisma.AppRequestWhereInput, proposed: Proposed, lists: PreviewLists): Promise<number> {
  const settings = await tx.orgSettings.findUnique({ where: { orgId: proposed.orgId } });
  const allowOrgManagedApps = proposed.allowOrgManagedApps ?? settings?.allowOrgManagedApps ?? false;
  const apps = new Map<string, StoredApp | null>();
  const resolved = new Map<string, Promise<string[]>>();

  /** resolveApprovers as the review calls it; resolved once per step for everyone but a requester who is among its approvers. */
  const approversFor = async (sources: { type: 'USER' | 'GROUP'; id: string }[], requesterId: string, fallbackApproverIds: string[]): Promise<string[]> => {
    const key = JSON.stringify([sources, fallbackApproverIds]);
    let shared = resolved.get(key);
    if (!shared) {
      shared = resolveApprovers(tx, proposed.orgId, sources, NOBODY, fallbackApproverIds);
      resolved.set(key, shared);
    }
    const approverIds = await shared;
    // The requester is never their own approver: only then does their resolution differ from the shared one.
    return approverIds.includes(requesterId) ? resolveApprovers(tx, proposed.orgId, sources, requesterId, fallbackApproverIds) : approverIds;
  };

  let judged = 0;
  let cursor: string | undefined;
  for (;;) {
    const page = await tx.appRequest.findMany({
      where: { ...where, status: 'PENDING' },
      select: { id: true, appId: true, requesterId: true, plan: true, currentStep: true, currentApproverIds: true },
      orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
      take: PAGE_SIZE,
      ...(cursor === undefined ? {} : { cursor: { id: cursor }, skip: 1 }),
    });
    if (page.length === 0) break;
    cursor = page[page.length - 1]!.id;

    const missing = [...new Set(page.map((row) => row.appId))].filter((appId) => !apps.has(appId));
    if (missing.length > 0) {
      const found = await tx.orgApp.findMany({ where: { id: { in: missing } }, include: { selfService: true } });
      for (const appId of missing) apps.set(appId, found.find((app) => app.id === appId) ?? null);
    }
    const requesters = new Map(
      (await tx.user.findMany({ where: { id: { in: [...new Set(page.map((row) => row.requesterId))] } }, select: { id: true, status: true } })).map((user) => [user.id, user.status]),
    );
    const escalated = new Set(
      (await tx.appRequestEvent.findMany({ where: { requestId: { in: page.map((row) => row.id) }, name: 'app.access_request.escalate' }, select: { requestId: true, step: true } })).map(
        (event) => `${event.requestId}:${event.step}`,
      ),
    );

    for (const row of page) {
      const parsed = requestPlanSchema.safeParse(row.plan);
      // A request without a plan (or one that no longer fits it) cannot be judged here; its own review fails the same way.
      if (!parsed.success) continue;
      const plan = parsed.data;
      // A request without approval is granted as soon as it is submitted: it never reviews itself.
      if (!plan.approvalRequired) continue;
      judged += 1;

      const stored = apps.get(row.appId) ?? null;
      const changedApp = proposed.app?.appId === row.appId ? proposed.app : undefined;
      const app: ReviewFacts['app'] =
        stored && changedApp ? { status: stored.status, selfService: { requestsEnabled: changedApp.requestsEnabled, approvalRequired: changedApp.approvalRequired } } : stored;
      const facts: ReviewFacts = { allowOrgManagedApps, app, requesterStatus: requesters.get(row.requesterId) ?? null };
      const entry = { requestId: row.id, appId: row.appId, requesterId: row.requesterId };

      const reason = closingReason(plan, facts);
      if (reason) {
        lists.close({ ...entry, reason });
        continue;
      }
      const step = row.currentStep === null ? null : (plan.steps.find((candidate) => candidate.number === row.currentStep) ?? null);
      if (!step) continue;
      const fallbackApproverIds = changedApp?.fallbackApproverIds ?? stored?.selfService?.fallbackApproverIds ?? [];
      // As the review does (activities/app-requests.ts): each group of sources resolved on its own, all their approvers once each.
      const approverIds: string[] = [];
      for (const sources of reviewSourcesOf(step, escalated.has(`${row.id}:${step.number}`))) {
        for (const id of await approversFor(sources, row.requesterId, fallbackApproverIds)) if (!approverIds.includes(id)) approverIds.push(id);
      }
      // Admins decide neither closing nor re-routing: the verdict is judged without them.
      const verdict = stepVerdict(step, approverIds, []);
      if ('close' in verdict) {
        lists.close({ ...entry, reason: verdict.close });
        continue;
      }
      const toApproverIds = reroutedTo(verdict, row.currentApproverIds);
      if (toApproverIds) lists.reroute({ ...entry, step: step.number, fromApproverIds: row.currentApproverIds, toApproverIds });
    }
    if (page.length < PAGE_SIZE) break;
  }
  return judged;
}

/** The flows an org settings change switches off, with what stays. */
async function settingsTurnedOff(tx: Transaction, orgId: string, before: SettingsSnapshot, after: SettingsSnapshot): Promise<PreviewTurnOff[]> {
  const off = (key: keyof SettingsSnapshot) => before[key] === true && after[key] === false;
  const turnedOff: PreviewTurnOff[] = [];
  if (off('allowOrgManagedApps')) {
    // The Available Apps list (activities/read-models.ts): active apps with requests enabled.
    const where = { orgId, requestsEnabled: true, app: { status: 'ACTIVE' as const } };
    const appIdsTotal = await tx.appSelfServiceConfig.count({ where });
    const available = await tx.appSelfServiceConfig.findMany({ where, select: { appId: true }, orderBy: { appId: 'asc' }, take: PREVIEW_LIST_LIMIT });
    turnedOff.push({
      flow: 'ORG_MANAGED_APP_REQUESTS',
      setting: 'allowOrgManagedApps',
      effect: `users can no longer request org-managed apps: the ${appIdsTotal} apps of the Available Apps list can no longer be requested (their configuration is kept) and pending requests close`,
      appIds: available.map((config) => config.appId),
      appIdsTotal,
    });
  }
  if (off('allowPersonalApps')) {
    const added = await tx.personalApp.count({ where: { orgId, status: 'ACTIVE' } });
    turnedOff.push({
      flow: 'PERSONAL_APP_ADDS',
      setting: 'allowPersonalApps',
      effect: `users can no longer add personal app integrations; the ${added} personal apps already added stay on their dashboards`,
    });
  }
  if (off('allowTechnicalContactRequests')) {
    const queued = await tx.technicalContactMessage.count({ where: { orgId, status: 'QUEUED' } });
    turnedOff.push({
      flow: 'TECHNICAL_CONTACT_MESSAGES',
      setting: 'allowTechnicalContactRequests',
      effect: `users can no longer email the Technical Contact; the ${queued} messages already accepted are still delivered`,
    });
  }
  if (off('allowMoveToOktaPersonal')) {
    turnedOff.push({
      flow: 'MOVE_TO_OKTA_PERSONAL',
      setting: 'allowMoveToOktaPersonal',
      effect: 'users can no longer move personal apps to Okta Personal; apps already moved stay moved',
    });
  }
  return turnedOff;
}

/** `selfservice.settings.preview-requested.v1`: what `settings.update-requested` with the same data would do. */
export async function previewSettingsChange(tx: Transaction, { data }: CommandOf<'selfservice.settings.preview-requested.v1'>): Promise<Accepted> {
  const checked = await checkSettingsChange(tx, data, { action: 'settings.preview', readOnly: true });
  const lists = new PreviewLists();
  const pendingReviewed = await judgePendingRequests(tx, reachOfChange({ orgId: data.orgId }), { orgId: data.orgId, allowOrgManagedApps: checked.after.allowOrgManagedApps }, lists);
  const noChange = checked.changed.length === 0;
  const wouldTurnOff = await settingsTurnedOff(tx, data.orgId, checked.before, checked.after);
  const preview: ChangePreview = {
    change: 'selfservice.settings.update-requested.v1',
    computedAgainstVersion: checked.version,
    wouldBeVersion: noChange ? null : checked.version + 1,
    noChange,
    changed: checked.changed,
    pendingReviewed,
    ...listsOf(lists),
    wouldTurnOff,
    truncated: lists.truncated || wouldTurnOff.some((item) => (item.appIdsTotal ?? 0) > (item.appIds?.length ?? 0)),
  };
  return { details: { preview }, audit: checked.audit };
}

/** `selfservice.app.self-service-preview-requested.v1`: what `app.self-service-configured` with the same data would do. */
export async function previewAppSelfServiceConfig(tx: Transaction, { data }: CommandOf<'selfservice.app.self-service-preview-requested.v1'>): Promise<Accepted> {
  const { orgId, appId } = data;
  const { audit, app, before, currentVersion, fields, unchanged } = await checkAppConfiguration(tx, data, { action: 'app.self-service.preview' });
  const lists = new PreviewLists();
  const proposed: Proposed = {
    orgId,
    app: { appId, requestsEnabled: fields.requestsEnabled, approvalRequired: fields.approvalRequired, fallbackApproverIds: fields.fallbackApproverIds },
  };
  const pendingReviewed = await judgePendingRequests(tx, reachOfChange({ orgId, appId }), proposed, lists);

  const changed = unchanged ? [] : configChanges(before, fields);
  const wouldTurnOff: PreviewTurnOff[] = [];
  if (before?.requestsEnabled && !fields.requestsEnabled) {
    wouldTurnOff.push({
      flow: 'APP_REQUESTS',
      setting: 'requestsEnabled',
      appId,
      effect: `users can no longer request ${app.label}: it leaves the Available Apps list and its pending requests close`,
    });
  } else if (before?.requestsEnabled && before.approvalRequired && !fields.approvalRequired) {
    wouldTurnOff.push({
      flow: 'APP_APPROVAL',
      setting: 'approvalRequired',
      appId,
      effect: `requests for ${app.label} are granted at once, without approval; its pending requests close and their requesters must request again`,
    });
  }
  const preview: ChangePreview = {
    change: 'selfservice.app.self-service-configured.v1',
    appId,
    computedAgainstVersion: currentVersion,
    wouldBeVersion: unchanged ? null : currentVersion + 1,
    noChange: unchanged,
    changed,
    pendingReviewed,
    ...listsOf(lists),
    wouldTurnOff,
  };
  return { details: { appId, preview }, audit };
}

function listsOf(lists: PreviewLists) {
  return {
    wouldClose: lists.wouldClose,
    wouldCloseTotal: lists.wouldCloseTotal,
    wouldReroute: lists.wouldReroute,
    wouldRerouteTotal: lists.wouldRerouteTotal,
    truncated: lists.truncated,
    listLimit: PREVIEW_LIST_LIMIT,
  };
}
