import { appSelfServiceConfig, type AppSelfServiceConfigInput, type Command } from '../events/inbound';
import { outboundEvents, type AppSelfServiceConfigState, type ApproverStepConfig } from '../events/outbound';
import { characterCount } from '../events/validation';
import { requireAdmin } from './admin-authorization';
import { MAX_ACCESS_DAYS } from '../rules/app-request';
import { CommandRejection, type Accepted, type AuditDraft } from '../rules/commands';
import { Prisma } from '../prisma/client/client';
import type { Transaction } from './database';

/**
 * Per-app Self Service configuration (spec section 2): who may request the app, whether approval is
 * needed and by whom. A super admin or an app admin configures it; every rule breach has its own code.
 */

export const MAX_APPROVER_STEPS = 10;
export const MAX_GROUP_APPROVERS = 100;
export const MAX_NOTE_LENGTH = 500;
export const MIN_TIMEOUT_DAYS = 1;
export const MAX_TIMEOUT_DAYS = 90;

export interface RuleViolation {
  code: string;
  message: string;
}

/** The rules that need nothing but the configuration itself. Pure, so it is unit-tested directly. */
export function configurationViolations(config: AppSelfServiceConfigInput): RuleViolation[] {
  const violations: RuleViolation[] = [];
  const steps = config.approverSteps ?? [];
  const noteLength = characterCount(config.noteForRequester ?? '');
  if (noteLength > MAX_NOTE_LENGTH) {
    violations.push({
      code: 'NOTE_TOO_LONG',
      message: `noteForRequester has ${noteLength} characters; at most ${MAX_NOTE_LENGTH} are allowed`,
    });
  }
  if (config.approvalRequired && steps.length === 0) {
    violations.push({ code: 'APPROVER_STEPS_REQUIRED', message: `approval needs 1 to ${MAX_APPROVER_STEPS} approver steps; none were given` });
  }
  if (steps.length > MAX_APPROVER_STEPS) {
    violations.push({
      code: 'TOO_MANY_APPROVER_STEPS',
      message: `${steps.length} approver steps were given; at most ${MAX_APPROVER_STEPS} are allowed`,
    });
  }
  violations.push(...accessViolations(config.timeBoundAccess));
  violations.push(...attributeViolations(config));
  const seen = new Set<string>();
  steps.forEach((step, index) => {
    const where = `approver step ${index + 1}`;
    const key = `${step.type}:${step.id}`;
    if (seen.has(key)) {
      violations.push({ code: 'DUPLICATE_APPROVER', message: `${where} repeats ${step.type} ${step.id}; each user or group may appear once` });
    }
    seen.add(key);
    violations.push(...timingViolations(where, step));
    if (step.escalation) {
      const escalationWhere = `the escalation of ${where}`;
      violations.push(...timingViolations(escalationWhere, step.escalation));
      const escalationSeen = new Set<string>();
      for (const approver of step.escalation.approvers) {
        const approverKey = `${approver.type}:${approver.id}`;
        if (escalationSeen.has(approverKey)) {
          violations.push({ code: 'DUPLICATE_APPROVER', message: `${escalationWhere} repeats ${approver.type} ${approver.id}; each user or group may appear once` });
        }
        escalationSeen.add(approverKey);
      }
    }
  });
  return violations;
}

/**
 * App user attributes: declared once each; steps name only declared ones; a required attribute must be
 * writable by some step (else no grant could ever have it).
 */
function attributeViolations(config: AppSelfServiceConfigInput): RuleViolation[] {
  const declared = config.appUserAttributes ?? [];
  const names = declared.map((attribute) => attribute.name);
  const repeated = names.filter((name, index) => names.indexOf(name) !== index);
  if (repeated.length > 0) return [{ code: 'DUPLICATE_ATTRIBUTE', message: `appUserAttributes declares ${[...new Set(repeated)].join(', ')} more than once` }];
  const steps = config.approvalRequired ? (config.approverSteps ?? []) : [];
  for (const [index, step] of steps.entries()) {
    const unknown = Object.keys(step.attributes ?? {}).filter((name) => !names.includes(name));
    if (unknown.length > 0) {
      return [{ code: 'UNKNOWN_ATTRIBUTE', message: `approver step ${index + 1} names ${unknown.join(', ')}, which appUserAttributes does not declare` }];
    }
  }
  const unwritable = declared.filter((attribute) => attribute.required && !steps.some((step) => step.attributes?.[attribute.name] === 'WRITE')).map((attribute) => attribute.name);
  if (unwritable.length > 0) {
    return [
      {
        code: 'REQUIRED_ATTRIBUTE_NOT_WRITABLE',
        message: `${unwritable.join(', ')} ${unwritable.length > 1 ? 'are' : 'is'} required, but no approver step may set ${unwritable.length > 1 ? 'them' : 'it'} (WRITE)${config.approvalRequired ? '' : ': approval is off'}`,
      },
    ];
  }
  return [];
}

/** Time-bound access: at most MAX_ACCESS_DAYS whole days, reminded at least a day before its end. */
function accessViolations(access: AppSelfServiceConfigInput['timeBoundAccess']): RuleViolation[] {
  if (!access) return [];
  const { maxDays, reminderDaysBefore } = access;
  if (!Number.isInteger(maxDays) || maxDays < 1 || maxDays > MAX_ACCESS_DAYS) {
    return [{ code: 'INVALID_ACCESS_DURATION', message: `timeBoundAccess.maxDays is ${maxDays}; use a whole number of days from 1 to ${MAX_ACCESS_DAYS}` }];
  }
  if (reminderDaysBefore !== undefined && (!Number.isInteger(reminderDaysBefore) || reminderDaysBefore < 1 || reminderDaysBefore >= maxDays)) {
    return [
      {
        code: 'INVALID_REMINDER',
        message: `timeBoundAccess reminds ${reminderDaysBefore} days before the end of at most ${maxDays} days of access; use a whole number of days, at least 1 and less than maxDays`,
      },
    ];
  }
  return [];
}

/** A timeout of 1-90 days (calendar or business), and a reminder before it in the same unit. */
function timingViolations(where: string, timing: { timeout: { days?: number; businessDays?: number }; reminder?: { daysBefore: number } }): RuleViolation[] {
  const violations: RuleViolation[] = [];
  const business = timing.timeout.businessDays !== undefined;
  const days = timing.timeout.businessDays ?? timing.timeout.days ?? Number.NaN;
  const unit = business ? 'business days' : 'days';
  if (!Number.isInteger(days) || days < MIN_TIMEOUT_DAYS || days > MAX_TIMEOUT_DAYS) {
    violations.push({
      code: 'INVALID_STEP_TIMEOUT',
      message: `${where} times out after ${days} ${unit}; use 7 (1 week), 30, or a custom whole number of ${unit} from ${MIN_TIMEOUT_DAYS} to ${MAX_TIMEOUT_DAYS}`,
    });
  }
  const reminder = timing.reminder?.daysBefore;
  if (reminder !== undefined && (!Number.isInteger(reminder) || reminder < 1 || reminder >= days)) {
    violations.push({
      code: 'INVALID_REMINDER',
      message: `${where} reminds ${reminder} ${unit} before a ${days}-${business ? 'business-day' : 'day'} timeout; the reminder must be a whole number of ${unit}, at least 1 and less than the timeout`,
    });
  }
  return violations;
}

type ConfigureCommand = Extract<Command, { type: 'selfservice.app.self-service-configured.v1' }>;

async function checkApprovers(tx: Transaction, orgId: string, config: AppSelfServiceConfigInput, audit: AuditDraft): Promise<void> {
  const sources = (config.approverSteps ?? []).flatMap((step, index) => [
    { where: `approver step ${index + 1}`, step },
    ...(step.escalation?.approvers ?? []).map((approver) => ({ where: `the escalation of approver step ${index + 1}`, step: approver })),
  ]);
  for (const { where, step } of sources) {
    if (step.type === 'USER') {
      const user = await tx.user.findUnique({ where: { id: step.id } });
      if (!user || user.orgId !== orgId) {
        throw new CommandRejection('APPROVER_NOT_FOUND', `${where}: user ${step.id} is not a user of org ${orgId}`, audit);
      }
      if (user.status !== 'ACTIVE') {
        throw new CommandRejection('APPROVER_INACTIVE', `${where}: user ${step.id} is ${user.status}; approvers must be active`, audit);
      }
      continue;
    }
    const group = await tx.group.findUnique({ where: { id: step.id }, include: { _count: { select: { members: true } } } });
    if (!group || group.orgId !== orgId) {
      throw new CommandRejection('APPROVER_GROUP_NOT_FOUND', `${where}: group ${step.id} is not a group of org ${orgId}`, audit);
    }
    if (group._count.members > MAX_GROUP_APPROVERS) {
      throw new CommandRejection(
        'APPROVER_GROUP_TOO_LARGE',
        `${where}: group ${step.id} has ${group._count.members} members; an approver group may have at most ${MAX_GROUP_APPROVERS}`,
        audit,
      );
    }
    if (group._count.members === 0) {
      throw new CommandRejection('APPROVER_GROUP_EMPTY', `${where}: group ${step.id} has no members, so nobody could approve`, audit);
    }
  }
  for (const fallbackId of config.fallbackApproverIds ?? []) {
    const user = await tx.user.findUnique({ where: { id: fallbackId } });
    if (!user || user.orgId !== orgId || user.status !== 'ACTIVE') {
      throw new CommandRejection('FALLBACK_APPROVER_INVALID', `fallback approver ${fallbackId} is not an active user of org ${orgId}`, audit);
    }
  }
}

export type AppConfigurationData = ConfigureCommand['data'];

/**
 * Every rule a per-app configuration must pass (super admin or an admin of the app, the configuration's
 * own rules, the app, expectedVersion, the org switch, approvers), each refusal with its code and the
 * audit entry under `action`; writes nothing. The change itself and its preview both go through it.
 */
export async function checkAppConfiguration(tx: Transaction, data: AppConfigurationData, { action }: { action: string }) {
  const { orgId, actorId, appId, config, expectedVersion } = data;
  const audit: AuditDraft = { orgId, actorId, action, subject: appId, after: config };
  await requireAdmin(tx, { orgId, actorId, roles: ['SUPER_ADMIN', 'APP_ADMIN'], action: audit.action, subject: appId, appId });

  const [violation] = configurationViolations(config);
  if (violation) throw new CommandRejection(violation.code, violation.message, audit);

  const app = await tx.orgApp.findUnique({ where: { id: appId }, include: { selfService: true } });
  if (!app || app.orgId !== orgId) throw new CommandRejection('APP_NOT_FOUND', `app ${appId} is not an app integration of org ${orgId}`, audit);
  const before = app.selfService;
  audit.before = before ?? undefined;
  const currentVersion = before?.version ?? 0;
  if (expectedVersion !== undefined && expectedVersion !== currentVersion) {
    throw new CommandRejection(
      'STALE_VERSION',
      `the Self Service configuration of app ${appId} is at version ${currentVersion}, but the change was based on version ${expectedVersion}; reload and retry`,
      audit,
    );
  }

  if (config.requestsEnabled) {
    const settings = await tx.orgSettings.findUnique({ where: { orgId } });
    if (!settings?.allowOrgManagedApps) {
      throw new CommandRejection(
        'ORG_MANAGED_APP_REQUESTS_DISABLED',
        'users may not request org-managed apps in this org: go to the Self Service settings and turn on "Allow users to add org-managed app integrations" first',
        audit,
      );
    }
  }
  if (config.approvalRequired && app.catalogAppId) {
    const catalogApp = await tx.catalogApp.findUnique({ where: { id: app.catalogAppId } });
    if (catalogApp?.requiresPersonalAttributes) {
      throw new CommandRejection(
        'APPROVAL_NOT_SUPPORTED_FOR_APP',
        `app ${appId} requires personal attributes, so it cannot use the approval workflow; turn approval off for it`,
        audit,
      );
    }
  }
  if (config.approvalRequired) await checkApprovers(tx, orgId, config, audit);

  const fields = {
    orgId,
    requestsEnabled: config.requestsEnabled,
    approvalRequired: config.approvalRequired,
    noteForRequester: config.noteForRequester ?? null,
    approverSteps: config.approvalRequired ? (config.approverSteps ?? []) : [],
    notifications: config.notifications ?? {},
    fallbackApproverIds: config.fallbackApproverIds ?? [],
    justificationRequired: config.justificationRequired ?? false,
    denyCommentRequired: config.denyCommentRequired ?? false,
    timeBoundAccess: config.timeBoundAccess ?? Prisma.DbNull,
    appUserAttributes: config.appUserAttributes ?? [],
  };
  return { audit, app, before, currentVersion, fields, unchanged: before !== null && sameConfig(configView(before), configView(fields)) };
}

export async function configureAppSelfService(tx: Transaction, { data }: ConfigureCommand): Promise<Accepted> {
  const { orgId, actorId, appId } = data;
  const { audit, before, currentVersion, fields, unchanged } = await checkAppConfiguration(tx, data, { action: 'app.self-service.configure' });
  if (unchanged) {
    return { details: { appId, version: currentVersion, changed: false }, audit };
  }
  const version = currentVersion + 1;
  if (before) {
    const { count } = await tx.appSelfServiceConfig.updateMany({ where: { appId, version: currentVersion }, data: { ...fields, version } });
    if (count !== 1) throw new CommandRejection('STALE_VERSION', `the configuration of app ${appId} changed meanwhile; reload and retry`, audit);
  } else {
    await tx.appSelfServiceConfig.create({ data: { appId, ...fields, version } });
  }
  return {
    details: { appId, version },
    audit,
    events: [
      {
        name: 'app-self-service-changed',
        ...outboundEvents.appSelfServiceChanged({ orgId, actorId, appId, version, before: before ? configView(before) : null, after: configView(fields) }),
      },
    ],
  };
}

interface StoredConfig {
  requestsEnabled: boolean;
  approvalRequired: boolean;
  noteForRequester: string | null;
  approverSteps: unknown;
  notifications: unknown;
  fallbackApproverIds: string[];
  justificationRequired?: boolean;
  denyCommentRequired?: boolean;
  timeBoundAccess?: unknown;
  appUserAttributes?: unknown;
}

function sameConfig(a: StoredConfig, b: StoredConfig): boolean {
  return configChanges(a, b).length === 0;
}

/**
 * The fields of a configuration that differ (all of them when there was none). Compared without regard
 * to key order: the JSON columns are jsonb, which stores an object's keys in an order of its own.
 */
export function configChanges(before: StoredConfig | null, after: StoredConfig): string[] {
  const was: Record<string, unknown> | null = before ? { ...configView(before) } : null;
  const now: Record<string, unknown> = { ...configView(after) };
  // Both sides' keys: a switch turned off is left out of its view, and is a change all the same.
  const keys = [...new Set([...Object.keys(was ?? {}), ...Object.keys(now)])];
  return keys.filter((key) => was === null || canonicalJson(was[key]) !== canonicalJson(now[key]));
}

function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, nested: unknown) =>
    nested && typeof nested === 'object' && !Array.isArray(nested)
      ? Object.fromEntries(Object.entries(nested as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : nested,
  );
}

/** The configuration as compared and announced (the JSON columns hold what the command's schema let through). */
function configView(row: StoredConfig): AppSelfServiceConfigState {
  return {
    requestsEnabled: row.requestsEnabled,
    approvalRequired: row.approvalRequired,
    noteForRequester: row.noteForRequester,
    approverSteps: row.approverSteps as ApproverStepConfig[],
    notifications: row.notifications as AppSelfServiceConfigState['notifications'],
    fallbackApproverIds: row.fallbackApproverIds,
    // Announced when on (absent: off), so the configurations of apps that use neither read as before.
    ...(row.justificationRequired ? { justificationRequired: true } : {}),
    ...(row.denyCommentRequired ? { denyCommentRequired: true } : {}),
    ...(isTimeBoundAccess(row.timeBoundAccess) ? { timeBoundAccess: row.timeBoundAccess } : {}),
    ...(Array.isArray(row.appUserAttributes) && row.appUserAttributes.length > 0
      ? { appUserAttributes: row.appUserAttributes as NonNullable<AppSelfServiceConfigState['appUserAttributes']> }
      : {}),
  };
}

/** A stored time-bound access (the column holds what the command's schema let through, or SQL NULL). */
function isTimeBoundAccess(value: unknown): value is NonNullable<AppSelfServiceConfigState['timeBoundAccess']> {
  return appSelfServiceConfig.shape.timeBoundAccess.unwrap().safeParse(value).success;
}
