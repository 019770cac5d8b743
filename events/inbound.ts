import { z } from 'zod';
import { checkBookmarkUrl } from './bookmark-url';
import { FORBIDDEN_IN_NAMES, FORBIDDEN_IN_TEXT, Limits } from './limits';
import type { TopicName } from './topics';

/**
 * Inbound commands of the public contract (product spec sections 4 and 5), one zod schema per type.
 * Every string and list is bounded (`limits.ts`); ids and names refuse control characters, free text
 * keeps only tab, line feed and carriage return. A refusal names the field and the limit.
 */

/** A trimmed single-line string of 1 to `max` characters without control characters: ids, names, labels. */
const line = (what: string, max: number) =>
  z
    .string({ error: `${what} must be a string` })
    .trim()
    .min(1, `${what} must not be empty`)
    .max(max, `${what} must be at most ${max} characters`)
    .refine((value) => !FORBIDDEN_IN_NAMES.test(value), `${what} must not contain control characters`);

const id = (what: string) => line(what, Limits.id);
const name = (what: string) => line(what, Limits.name);

/**
 * Free text. Its limit in characters (as a person counts them) is a business rule with its own code
 * (COMMENT_TOO_LONG, NOTE_TOO_LONG, MESSAGE_TOO_LONG); a text more than twice that long in UTF-16 units
 * cannot be a slip and is refused here, before it reaches a workflow's history.
 */
const text = (what: string, max: number) =>
  z
    .string({ error: `${what} must be a string` })
    .max(max * 2, `${what} must be at most ${max} characters`)
    .refine((value) => !FORBIDDEN_IN_TEXT.test(value), `${what} must not contain control characters other than tab and line breaks`);

const list = <T extends z.ZodType>(what: string, item: T, max: number) =>
  z.array(item, { error: `${what} must be a list` }).max(max, `${what} must list at most ${max} entries`);

const email = z
  .email({ error: 'must be a valid email address' })
  .max(Limits.email, `must be at most ${Limits.email} characters`)
  .refine((value) => !FORBIDDEN_IN_NAMES.test(value), 'must not contain control characters');
const domain = z
  .string({ error: 'must be a domain name' })
  .max(Limits.domain, `must be at most ${Limits.domain} characters`)
  .trim()
  .toLowerCase()
  .regex(/^(?=.{1,253}$)([a-z0-9-]{1,63}\.)+[a-z]{2,63}$/, 'must be a domain name such as example.com');

export const USER_STATUSES = ['ACTIVE', 'SUSPENDED', 'DEACTIVATED'] as const;
export const ADMIN_ROLES = ['SUPER_ADMIN', 'APP_ADMIN', 'READ_ONLY_ADMIN'] as const;
export const SIGN_ON_MODES = ['SAML', 'OIDC', 'SWA', 'WS_FEDERATION', 'BOOKMARK', 'BASIC_AUTH', 'SECURE_PASSWORD_STORE'] as const;

// --- directory (selfservice.directory.v1) ---------------------------------------------------------

export const orgUpserted = z.object({
  orgId: id('orgId'),
  name: name('name'),
  emailDomains: list('emailDomains', domain, Limits.emailDomains).min(1, 'emailDomains must list at least one domain'),
  /** Omitted: keep what the backend has (a routine sync need not know the blocked domains). */
  blockedPersonalDomains: list('blockedPersonalDomains', domain, Limits.blockedPersonalDomains).optional(),
  /** Support-managed flags; an omitted flag keeps its current value. */
  features: z.object({ PERSONAL_APP_MIGRATION: z.boolean().optional() }).optional(),
});

export const userUpserted = z.object({
  orgId: id('orgId'),
  userId: id('userId'),
  email,
  displayName: name('displayName').optional(),
  status: z.enum(USER_STATUSES, { error: `status must be one of ${USER_STATUSES.join(', ')}` }),
  adminRoles: list('adminRoles', z.enum(ADMIN_ROLES, { error: `adminRoles may hold only ${ADMIN_ROLES.join(', ')}` }), Limits.adminRoles).default([]),
  /**
   * The apps an APP_ADMIN administers, as Okta scopes app admins: omitted or empty, every app of the
   * org; listed, only these (their requests and their Self Service configuration).
   */
  adminAppIds: list('adminAppIds', id('adminAppIds[]'), Limits.adminAppIds).default([]),
  /**
   * The user's manager (a user id of the org, as the directory's manager attribute has it), who may
   * request apps on their behalf. Omitted: keep the stored manager; null: the user has none. A plain
   * reference: it may name a user not synced yet.
   */
  managerId: id('managerId').nullable().optional(),
});

export const groupUpserted = z.object({
  orgId: id('orgId'),
  groupId: id('groupId'),
  name: name('name'),
  memberIds: list('memberIds', id('memberIds[]'), Limits.groupMembers),
});

export const catalogAppUpserted = z.object({
  catalogAppId: id('catalogAppId'),
  name: name('name'),
  signOnModes: list('signOnModes', z.enum(SIGN_ON_MODES), Limits.signOnModes).min(1, 'signOnModes must list at least one mode'),
  requiresPersonalAttributes: z.boolean().default(false),
  /**
   * The sites the app runs on (domains; each covers its subdomains), so that a personal bookmark of one
   * of them is refused in favour of the app. Omitted: keep what the backend has; [] clears them.
   */
  domains: list('domains', domain, Limits.catalogAppDomains).optional(),
});

export const orgAppUpserted = z.object({
  orgId: id('orgId'),
  appId: id('appId'),
  label: name('label'),
  signOnMode: z.enum(SIGN_ON_MODES),
  status: z.enum(['ACTIVE', 'INACTIVE'], { error: 'status must be ACTIVE or INACTIVE' }),
  catalogAppId: id('catalogAppId').optional(),
});

// --- admin commands (selfservice.admin-commands.v1) -----------------------------------------------

export const SETTING_KEYS = [
  'allowOrgManagedApps',
  'allowPersonalApps',
  'allowTechnicalContactRequests',
  'allowMoveToOktaPersonal',
] as const;
export type SettingKey = (typeof SETTING_KEYS)[number];

export const settingsUpdateRequested = z.object({
  orgId: id('orgId'),
  actorId: id('actorId'),
  changes: z
    .object({
      allowOrgManagedApps: z.boolean().optional(),
      allowPersonalApps: z.boolean().optional(),
      allowTechnicalContactRequests: z.boolean().optional(),
      allowMoveToOktaPersonal: z.boolean().optional(),
    })
    .strict()
    .refine((changes) => Object.keys(changes).length > 0, 'changes must name at least one setting'),
  expectedVersion: z.number().int().nonnegative().optional(),
});

export const WEEKDAYS = ['MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT', 'SUN'] as const;

function isTimeZone(value: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: value });
    return true;
  } catch {
    return false;
  }
}

const calendarDate = z
  .string({ error: 'holidays must be dates such as 2026-12-25' })
  .regex(/^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/, 'holidays must be dates such as 2026-12-25');

/** The org's working week, for steps whose timeouts are counted in business days. */
export const businessCalendar = z.object({
  timeZone: line('timeZone', Limits.timeZone).refine(isTimeZone, 'timeZone must be an IANA time zone such as Europe/Berlin'),
  workingDays: list('workingDays', z.enum(WEEKDAYS, { error: `workingDays may hold only ${WEEKDAYS.join(', ')}` }), WEEKDAYS.length)
    .min(1, 'workingDays must list at least one day')
    .refine((days) => new Set(days).size === days.length, 'workingDays must not repeat a day'),
  holidays: list('holidays', calendarDate, Limits.holidays).optional(),
});

export type BusinessCalendarInput = z.infer<typeof businessCalendar>;

/** Sets (or, with null, removes) the org's business calendar. */
export const businessCalendarSetRequested = z.object({
  orgId: id('orgId'),
  actorId: id('actorId'),
  calendar: businessCalendar.nullable(),
});

export const technicalContactSetRequested = z.object({
  orgId: id('orgId'),
  actorId: id('actorId'),
  contact: id('contact'),
});

/**
 * The shape of a per-app configuration. Its business rules (1-10 steps, no repeated approver, note of at
 * most 500 characters, timeouts of 1-90 days, ...) are checked where the command is applied, so that a
 * breach gets its own rejection code and an audit entry instead of going to the dead-letter topic.
 */
/** A step's timeout: calendar days, or business days of the org's business calendar. */
const stepTimeout = (what: string) =>
  z
    .object({
      days: z.number({ error: `${what}.days must be a number of days` }).optional(),
      businessDays: z.number({ error: `${what}.businessDays must be a number of business days` }).optional(),
    })
    .refine((timeout) => (timeout.days === undefined) !== (timeout.businessDays === undefined), `${what} must give either days or businessDays`);

/** A reminder, counted in the unit of its timeout (business days when the timeout is). */
const stepReminder = (what: string) => z.object({ daysBefore: z.number({ error: `${what}.daysBefore must be a number of days` }) });

const approverSource = (what: string) =>
  z.object({
    type: z.enum(['USER', 'GROUP'], { error: `${what} type must be USER or GROUP` }),
    id: id(`${what} id`),
  });

/** An app user attribute's name, as the app's profile has it (costCenter, department, ...). */
const attributeName = z
  .string({ error: 'an attribute name must be a string' })
  .regex(/^[A-Za-z][A-Za-z0-9_.-]{0,63}$/, 'an attribute name is a letter then up to 63 letters, digits, _ . or -');

export const ATTRIBUTE_ACCESS = ['HIDDEN', 'READ', 'WRITE'] as const;

/** Values an approver sets, by attribute name. */
export const attributeValues = z
  .record(attributeName, line('attribute value', Limits.attributeValue))
  .refine((values) => Object.keys(values).length <= Limits.appUserAttributes, `attributes must set at most ${Limits.appUserAttributes} attributes`);

/** At a step's timeout, instead of expiring: named escalation approvers with a new timeout, then expiry. */
export const stepEscalation = z.object({
  approvers: list('escalation.approvers', approverSource('escalation approver'), Limits.escalationApprovers).min(
    1,
    'escalation.approvers must list at least one user or group',
  ),
  timeout: stepTimeout('escalation.timeout'),
  reminder: stepReminder('escalation.reminder').optional(),
});

export const approverStep = z.object({
  type: z.enum(['USER', 'GROUP'], { error: 'approver step type must be USER or GROUP' }),
  id: id('approver step id'),
  timeout: stepTimeout('timeout'),
  reminder: stepReminder('reminder').optional(),
  /** Omitted: the request expires at the step's timeout (the behaviour before escalation existed). */
  escalation: stepEscalation.optional(),
  /** What this step's approvers see of the app user's attributes (`appUserAttributes`) or may set; omitted: HIDDEN. */
  attributes: z
    .record(attributeName, z.enum(ATTRIBUTE_ACCESS, { error: `attribute access must be one of ${ATTRIBUTE_ACCESS.join(', ')}` }))
    .refine((access) => Object.keys(access).length <= Limits.appUserAttributes, `attributes must name at most ${Limits.appUserAttributes} attributes`)
    .optional(),
});

const recipients = z.object({
  requester: z.boolean().optional(),
  approvers: z.boolean().optional(),
  others: list('others', email, Limits.notificationOthers).optional(),
});

export const appSelfServiceConfig = z.object({
  requestsEnabled: z.boolean(),
  approvalRequired: z.boolean(),
  noteForRequester: text('noteForRequester', Limits.noteForRequester).optional(),
  approverSteps: list('approverSteps', approverStep, Limits.approverSteps).optional(),
  notifications: z
    .object({ onApprove: recipients.optional(), onDeny: recipients.optional(), onExpire: recipients.optional() })
    .optional(),
  fallbackApproverIds: list('fallbackApproverIds', id('fallbackApproverIds[]'), Limits.fallbackApprovers).optional(),
  /** Requesters must give a justification (the request's `comment`); omitted: false. Applies to requests made after the change. */
  justificationRequired: z.boolean({ error: 'justificationRequired must be true or false' }).optional(),
  /** Approvers must give a comment to deny; omitted: false. Applies to requests made after the change. */
  denyCommentRequired: z.boolean({ error: 'denyCommentRequired must be true or false' }).optional(),
  /** The app user's attributes that approvers may see or set (each step says which); `required` ones must be set before the grant. */
  appUserAttributes: list(
    'appUserAttributes',
    z.object({ name: attributeName, required: z.boolean({ error: 'appUserAttributes[].required must be true or false' }).optional() }),
    Limits.appUserAttributes,
  ).optional(),
  /**
   * Time-bound access: a grant lasts at most `maxDays`; the requester may pick a shorter one when
   * `requesterPicksDuration`; the user is reminded `reminderDaysBefore` the end. Omitted: access does not
   * end. Applies to grants of requests made after the change.
   */
  timeBoundAccess: z
    .object({
      maxDays: z.number({ error: 'timeBoundAccess.maxDays must be a number of days' }),
      requesterPicksDuration: z.boolean({ error: 'timeBoundAccess.requesterPicksDuration must be true or false' }).optional(),
      reminderDaysBefore: z.number({ error: 'timeBoundAccess.reminderDaysBefore must be a number of days' }).optional(),
    })
    .optional(),
});
export type AppSelfServiceConfigInput = z.infer<typeof appSelfServiceConfig>;

export const appSelfServiceConfigured = z.object({
  orgId: id('orgId'),
  actorId: id('actorId'),
  appId: id('appId'),
  config: appSelfServiceConfig,
  expectedVersion: z.number().int().nonnegative().optional(),
});

/** RESEND, DELETE, OVERRIDE act on a pending request; REVOKE ends a time-bound grant early. */
export const ADMIN_ACTIONS = ['RESEND', 'DELETE', 'OVERRIDE', 'REVOKE'] as const;
export const appRequestAdminAction = z.object({
  orgId: id('orgId'),
  actorId: id('actorId'),
  requestId: id('requestId'),
  action: z.enum(ADMIN_ACTIONS, { error: `action must be one of ${ADMIN_ACTIONS.join(', ')}` }),
  reason: text('reason', Limits.reason).optional(),
});

// --- end-user requests (selfservice.user-requests.v1) ---------------------------------------------

export const appRequested = z.object({
  orgId: id('orgId'),
  userId: id('userId'),
  appId: id('appId'),
  /** The requester's comment; the justification when the app requires one (`justificationRequired`). */
  comment: text('comment', Limits.comment).optional(),
  /**
   * A request for someone else: the user id of the caller's direct report (the caller, `userId`, must be
   * their manager in the directory). The report is then the requester of record; `userId` stays the
   * caller, who is recorded as who asked. Omitted (or equal to `userId`): a request for oneself.
   */
  onBehalfOf: id('onBehalfOf').optional(),
  /** For an app with time-bound access that lets the requester pick: how many days (up to its maximum). */
  accessDays: z.number({ error: 'accessDays must be a number of days' }).int('accessDays must be a whole number of days').min(1, 'accessDays must be at least 1').max(
    Limits.accessDays,
    `accessDays must be at most ${Limits.accessDays}`,
  ).optional(),
  /** An extension of a time-bound grant: the request id of the grant, still active, of the same requester and app. */
  extendsRequestId: id('extendsRequestId').optional(),
});

export const appRequestCancelled = z.object({ orgId: id('orgId'), userId: id('userId'), requestId: id('requestId') });

/** An instant with its offset (ISO 8601 / RFC 3339), e.g. 2026-12-24T17:00:00Z. */
const instant = (what: string) =>
  z.iso.datetime({ offset: true, error: `${what} must be an ISO 8601 date-time with an offset, such as 2026-12-24T17:00:00Z` });

/**
 * Delegation while away: `userId` names `delegateId` to decide the approver steps that would go to
 * them from `start` until `end` (exclusive). The period's rules (end after start, at most 365 days,
 * no overlap with another of the user's) and the delegate's (an active user of the org, not oneself)
 * are checked where it is applied, each with its own code.
 */
export const delegationSetRequested = z.object({
  orgId: id('orgId'),
  userId: id('userId'),
  delegateId: id('delegateId'),
  start: instant('start'),
  end: instant('end'),
  /** Why (e.g. "parental leave"); at most 500 characters (REASON_TOO_LONG). */
  reason: text('reason', Limits.delegationReason).optional(),
});

/** Withdraws one of the user's delegations: before it starts, or while it is in force (it ends now). */
export const delegationCancelRequested = z.object({ orgId: id('orgId'), userId: id('userId'), delegationId: id('delegationId') });

export const personalAppAddRequested = z.strictObject(
  {
    orgId: id('orgId'),
    userId: id('userId'),
    catalogAppId: id('catalogAppId'),
    username: name('username').max(Limits.email, `username must be at most ${Limits.email} characters`).optional(),
  },
  {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `only orgId, userId, catalogAppId and username are accepted (never a password or other credential); unexpected: ${issue.keys.join(', ')}`
        : undefined,
  },
);

/**
 * A personal bookmark's URL: https, a domain name as host, no credentials (`bookmark-url.ts`); given on
 * in its normalized form.
 */
const bookmarkUrl = z
  .string({ error: 'url must be a string' })
  .trim()
  .max(Limits.url, `url must be at most ${Limits.url} characters`)
  .superRefine((value, context) => {
    if (value.length > Limits.url) return; // said by max() already
    const check = checkBookmarkUrl(value);
    if (!check.ok) context.addIssue({ code: 'custom', message: check.problem });
  })
  .transform((value) => {
    const check = checkBookmarkUrl(value);
    return check.ok ? check.url : value;
  })
  .meta({
    format: 'uri',
    description:
      'https only, parsed as browsers do (WHATWG URL); no username or password, no query or fragment parameter named like a secret; the host a domain name (no IP address, no localhost). Stored in its normalized form.',
  });

/** When the catalog has no app for a site: a plain link on the user's dashboard. Never a credential. */
export const personalBookmarkAddRequested = z.strictObject(
  {
    orgId: id('orgId'),
    userId: id('userId'),
    name: name('name'),
    url: bookmarkUrl,
  },
  {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `only orgId, userId, name and url are accepted (never a username, password or other credential); unexpected: ${issue.keys.join(', ')}`
        : undefined,
  },
);

export const technicalContactMessageSubmitted = z.object({
  orgId: id('orgId'),
  userId: id('userId'),
  message: text('message', Limits.technicalContactMessage),
});

export const personalAppMoveRequested = z.object({
  orgId: id('orgId'),
  userId: id('userId'),
  personalAppIds: list('personalAppIds', id('personalAppIds[]'), Limits.personalAppIds).min(1, 'personalAppIds must list at least one app'),
  removeFromDashboard: z.boolean().default(false),
});

// --- decisions (selfservice.decisions.v1) ---------------------------------------------------------

export const appRequestDecided = z.object({
  orgId: id('orgId'),
  requestId: id('requestId'),
  approverId: id('approverId'),
  decision: z.enum(['APPROVE', 'DENY'], { error: 'decision must be APPROVE or DENY' }),
  comment: text('comment', Limits.comment).optional(),
  /** App user attributes this step's approvers may set (WRITE), with an approval. */
  attributes: attributeValues.optional(),
});

/** Every inbound type, the topic it belongs on, and the schema of its data. */
export const inboundCommands = {
  'selfservice.directory.org-upserted.v1': { topic: 'directory', data: orgUpserted },
  'selfservice.directory.user-upserted.v1': { topic: 'directory', data: userUpserted },
  'selfservice.directory.group-upserted.v1': { topic: 'directory', data: groupUpserted },
  'selfservice.directory.catalog-app-upserted.v1': { topic: 'directory', data: catalogAppUpserted },
  'selfservice.directory.org-app-upserted.v1': { topic: 'directory', data: orgAppUpserted },
  'selfservice.settings.update-requested.v1': { topic: 'adminCommands', data: settingsUpdateRequested },
  'selfservice.technical-contact.set-requested.v1': { topic: 'adminCommands', data: technicalContactSetRequested },
  'selfservice.business-calendar.set-requested.v1': { topic: 'adminCommands', data: businessCalendarSetRequested },
  'selfservice.app.self-service-configured.v1': { topic: 'adminCommands', data: appSelfServiceConfigured },
  // Dry runs: the same data as the change, answered with what it would do; nothing changes.
  'selfservice.settings.preview-requested.v1': { topic: 'adminCommands', data: settingsUpdateRequested },
  'selfservice.app.self-service-preview-requested.v1': { topic: 'adminCommands', data: appSelfServiceConfigured },
  'selfservice.app-request.admin-action.v1': { topic: 'adminCommands', data: appRequestAdminAction },
  'selfservice.app.requested.v1': { topic: 'userRequests', data: appRequested },
  'selfservice.app-request.cancelled.v1': { topic: 'userRequests', data: appRequestCancelled },
  'selfservice.personal-app.add-requested.v1': { topic: 'userRequests', data: personalAppAddRequested },
  'selfservice.personal-bookmark.add-requested.v1': { topic: 'userRequests', data: personalBookmarkAddRequested },
  'selfservice.technical-contact.message-submitted.v1': { topic: 'userRequests', data: technicalContactMessageSubmitted },
  'selfservice.personal-app.move-requested.v1': { topic: 'userRequests', data: personalAppMoveRequested },
  'selfservice.delegation.set-requested.v1': { topic: 'userRequests', data: delegationSetRequested },
  'selfservice.delegation.cancel-requested.v1': { topic: 'userRequests', data: delegationCancelRequested },
  'selfservice.app-request.decided.v1': { topic: 'decisions', data: appRequestDecided },
} as const satisfies Record<string, { topic: TopicName; data: z.ZodType }>;

export type InboundType = keyof typeof inboundCommands;
export type InboundData<T extends InboundType> = z.infer<(typeof inboundCommands)[T]['data']>;

/** A validated command, as it travels into workflows: the CloudEvent id is the idempotency key. */
export type Command = {
  [T in InboundType]: { commandId: string; type: T; source: string; receivedAt: string; data: InboundData<T> };
}[InboundType];

export function isInboundType(type: string): type is InboundType {
  return Object.prototype.hasOwnProperty.call(inboundCommands, type);
}
