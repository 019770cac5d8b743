import { z } from 'zod';
import type { TopicName } from './topics';

/** Inbound commands of the public contract (product spec sections 4 and 5), one zod schema per type. */

const id = (what: string) =>
  z
    .string({ error: `${what} must be a string` })
    .trim()
    .min(1, `${what} must not be empty`)
    .max(128, `${what} must be at most 128 characters`);

const email = z.email({ error: 'must be a valid email address' }).max(254);
const domain = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^(?=.{1,253}$)([a-z0-9-]{1,63}\.)+[a-z]{2,63}$/, 'must be a domain name such as example.com');

export const USER_STATUSES = ['ACTIVE', 'SUSPENDED', 'DEACTIVATED'] as const;
export const ADMIN_ROLES = ['SUPER_ADMIN', 'APP_ADMIN', 'READ_ONLY_ADMIN'] as const;
export const SIGN_ON_MODES = ['SAML', 'OIDC', 'SWA', 'WS_FEDERATION', 'BOOKMARK', 'BASIC_AUTH', 'SECURE_PASSWORD_STORE'] as const;

// --- directory (selfservice.directory.v1) ---------------------------------------------------------

export const orgUpserted = z.object({
  orgId: id('orgId'),
  name: z.string().trim().min(1, 'name must not be empty').max(200),
  emailDomains: z.array(domain).min(1, 'emailDomains must list at least one domain'),
  /** Omitted: keep what the backend has (a routine sync need not know the blocked domains). */
  blockedPersonalDomains: z.array(domain).optional(),
  /** Support-managed flags; an omitted flag keeps its current value. */
  features: z.object({ PERSONAL_APP_MIGRATION: z.boolean().optional() }).optional(),
});

export const userUpserted = z.object({
  orgId: id('orgId'),
  userId: id('userId'),
  email,
  displayName: z.string().trim().max(200).optional(),
  status: z.enum(USER_STATUSES, { error: `status must be one of ${USER_STATUSES.join(', ')}` }),
  adminRoles: z.array(z.enum(ADMIN_ROLES, { error: `adminRoles may hold only ${ADMIN_ROLES.join(', ')}` })).default([]),
});

export const groupUpserted = z.object({
  orgId: id('orgId'),
  groupId: id('groupId'),
  name: z.string().trim().min(1).max(200),
  memberIds: z.array(id('memberIds[]')).max(10000),
});

export const catalogAppUpserted = z.object({
  catalogAppId: id('catalogAppId'),
  name: z.string().trim().min(1).max(200),
  signOnModes: z.array(z.enum(SIGN_ON_MODES)).min(1, 'signOnModes must list at least one mode'),
  requiresPersonalAttributes: z.boolean().default(false),
});

export const orgAppUpserted = z.object({
  orgId: id('orgId'),
  appId: id('appId'),
  label: z.string().trim().min(1).max(200),
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
export const approverStep = z.object({
  type: z.enum(['USER', 'GROUP'], { error: 'approver step type must be USER or GROUP' }),
  id: id('approver step id'),
  timeout: z.object({ days: z.number({ error: 'timeout.days must be a number of days' }) }),
  reminder: z.object({ daysBefore: z.number({ error: 'reminder.daysBefore must be a number of days' }) }).optional(),
});

const recipients = z.object({
  requester: z.boolean().optional(),
  approvers: z.boolean().optional(),
  others: z.array(email).max(20).optional(),
});

export const appSelfServiceConfig = z.object({
  requestsEnabled: z.boolean(),
  approvalRequired: z.boolean(),
  noteForRequester: z.string().optional(),
  approverSteps: z.array(approverStep).max(100, 'approverSteps is far too long').optional(),
  notifications: z
    .object({ onApprove: recipients.optional(), onDeny: recipients.optional(), onExpire: recipients.optional() })
    .optional(),
  fallbackApproverIds: z.array(id('fallbackApproverIds[]')).max(100).optional(),
});
export type AppSelfServiceConfigInput = z.infer<typeof appSelfServiceConfig>;

export const appSelfServiceConfigured = z.object({
  orgId: id('orgId'),
  actorId: id('actorId'),
  appId: id('appId'),
  config: appSelfServiceConfig,
  expectedVersion: z.number().int().nonnegative().optional(),
});

export const ADMIN_ACTIONS = ['RESEND', 'DELETE', 'OVERRIDE'] as const;
export const appRequestAdminAction = z.object({
  orgId: id('orgId'),
  actorId: id('actorId'),
  requestId: id('requestId'),
  action: z.enum(ADMIN_ACTIONS, { error: `action must be one of ${ADMIN_ACTIONS.join(', ')}` }),
  reason: z.string().max(1000).optional(),
});

// --- end-user requests (selfservice.user-requests.v1) ---------------------------------------------

export const appRequested = z.object({
  orgId: id('orgId'),
  userId: id('userId'),
  appId: id('appId'),
  comment: z.string().optional(),
});

export const appRequestCancelled = z.object({ orgId: id('orgId'), userId: id('userId'), requestId: id('requestId') });

export const personalAppAddRequested = z.strictObject(
  {
    orgId: id('orgId'),
    userId: id('userId'),
    catalogAppId: id('catalogAppId'),
    username: z.string().trim().min(1).max(254).optional(),
  },
  {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `only orgId, userId, catalogAppId and username are accepted (never a password or other credential); unexpected: ${issue.keys.join(', ')}`
        : undefined,
  },
);

export const technicalContactMessageSubmitted = z.object({
  orgId: id('orgId'),
  userId: id('userId'),
  message: z.string({ error: 'message must be a string' }),
});

export const personalAppMoveRequested = z.object({
  orgId: id('orgId'),
  userId: id('userId'),
  personalAppIds: z.array(id('personalAppIds[]')).min(1, 'personalAppIds must list at least one app').max(100),
  removeFromDashboard: z.boolean().default(false),
});

// --- decisions (selfservice.decisions.v1) ---------------------------------------------------------

export const appRequestDecided = z.object({
  orgId: id('orgId'),
  requestId: id('requestId'),
  approverId: id('approverId'),
  decision: z.enum(['APPROVE', 'DENY'], { error: 'decision must be APPROVE or DENY' }),
  comment: z.string().optional(),
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
  'selfservice.app.self-service-configured.v1': { topic: 'adminCommands', data: appSelfServiceConfigured },
  'selfservice.app-request.admin-action.v1': { topic: 'adminCommands', data: appRequestAdminAction },
  'selfservice.app.requested.v1': { topic: 'userRequests', data: appRequested },
  'selfservice.app-request.cancelled.v1': { topic: 'userRequests', data: appRequestCancelled },
  'selfservice.personal-app.add-requested.v1': { topic: 'userRequests', data: personalAppAddRequested },
  'selfservice.technical-contact.message-submitted.v1': { topic: 'userRequests', data: technicalContactMessageSubmitted },
  'selfservice.personal-app.move-requested.v1': { topic: 'userRequests', data: personalAppMoveRequested },
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
