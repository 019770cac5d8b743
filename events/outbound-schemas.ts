import { z } from 'zod';
import { appSelfServiceConfig, approverStep, businessCalendar, USER_STATUSES } from './inbound';
import type {
  AccessRequestEvent,
  AppAssigned,
  AppUnassigned,
  AppSelfServiceChanged,
  AppSelfServiceConfigState,
  BusinessCalendarChanged,
  ChangePreview,
  CommandAccepted,
  CommandRejected,
  DeadLetter,
  DelegationChanged,
  DirectoryGroupChanged,
  DirectoryUserChanged,
  NotEligibleReason,
  PersonalAppAdded,
  PersonalAppMoveResult,
  PersonalAppsMoved,
  PersonalBookmarkAdded,
  PreviewClose,
  PreviewReroute,
  PreviewTurnOff,
  SettingsChanged,
  SettingsSnapshot,
  TechnicalContactEmailFailed,
  TechnicalContactEmailSent,
} from './outbound';
import { PREVIEW_FLOWS } from './outbound';

/**
 * zod schemas of the outbound data, for the AsyncAPI document (`asyncapi.ts`). The interfaces of
 * `outbound.ts` stay what the code uses; each schema here is checked by the compiler to infer exactly
 * its interface (`exactly<T>()`), so neither can change without the other. Nested parts that the
 * inbound contract already has (an approver step, the notification choices) are the inbound schemas.
 */

/** True when A and B are the same type (not merely assignable to each other). */
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

/** Returns the schema as it is; does not compile unless the schema's output type is exactly T. */
const exactly =
  <T>() =>
  <S extends z.ZodType>(schema: S & (Same<z.output<S>, T> extends true ? unknown : { 'the schema does not infer its interface': T })): S =>
    schema;

const string = z.string();
const optional = z.string().optional();

const ids = z.array(string);

export const previewCloseData = exactly<PreviewClose>()(z.object({ requestId: string, appId: string, requesterId: string, reason: string }));

export const previewRerouteData = exactly<PreviewReroute>()(
  z.object({ requestId: string, appId: string, requesterId: string, step: z.number().int(), fromApproverIds: ids, toApproverIds: ids }),
);

export const previewTurnOffData = exactly<PreviewTurnOff>()(
  z.object({ flow: z.enum(PREVIEW_FLOWS), setting: string, appId: optional, effect: string, appIds: ids.optional(), appIdsTotal: z.number().int().optional() }),
);

export const changePreviewData = exactly<ChangePreview>()(
  z.object({
    change: string,
    appId: optional,
    computedAgainstVersion: z.number().int(),
    wouldBeVersion: z.number().int().nullable(),
    noChange: z.boolean(),
    changed: ids,
    pendingReviewed: z.number().int(),
    wouldClose: z.array(previewCloseData),
    wouldCloseTotal: z.number().int(),
    wouldReroute: z.array(previewRerouteData),
    wouldRerouteTotal: z.number().int(),
    wouldTurnOff: z.array(previewTurnOffData),
    truncated: z.boolean(),
    listLimit: z.number().int(),
  }),
);

export const commandAcceptedData = exactly<CommandAccepted>()(
  z
    .object({ commandId: string, commandType: string, orgId: optional, requestId: optional, workflowId: optional, preview: changePreviewData.optional() })
    .catchall(z.unknown()),
);

export const commandRejectedData = exactly<CommandRejected>()(
  z
    .object({ commandId: string, commandType: string, orgId: optional, code: string, message: string, requestId: optional, workflowId: optional })
    .catchall(z.unknown()),
);

export const settingsSnapshotData = exactly<SettingsSnapshot>()(
  z.object({
    allowOrgManagedApps: z.boolean(),
    allowPersonalApps: z.boolean(),
    allowTechnicalContactRequests: z.boolean(),
    allowMoveToOktaPersonal: z.boolean(),
    technicalContactUserId: z.string().nullable(),
  }),
);

export const settingsChangedData = exactly<SettingsChanged>()(
  z.object({
    orgId: string,
    actorId: string,
    version: z.number().int(),
    before: settingsSnapshotData,
    after: settingsSnapshotData,
    changed: z.array(settingsSnapshotData.keyof()),
    reason: optional,
  }),
);

export const businessCalendarChangedData = exactly<BusinessCalendarChanged>()(
  z.object({ orgId: string, actorId: string, before: businessCalendar.nullable(), after: businessCalendar.nullable() }),
);

export const delegationChangedData = exactly<DelegationChanged>()(
  z.object({
    orgId: string,
    userId: string,
    delegationId: string,
    delegateId: string,
    start: z.iso.datetime({ offset: true }),
    end: z.iso.datetime({ offset: true }),
    reason: optional,
    change: z.enum(['SET', 'CANCELLED']),
    cancelledAt: z.iso.datetime({ offset: true }).optional(),
  }),
);

const notifications = appSelfServiceConfig.shape.notifications.unwrap();

export const appSelfServiceConfigStateData = exactly<AppSelfServiceConfigState>()(
  z.object({
    requestsEnabled: z.boolean(),
    approvalRequired: z.boolean(),
    noteForRequester: z.string().nullable(),
    approverSteps: z.array(approverStep),
    notifications,
    fallbackApproverIds: z.array(string),
    justificationRequired: z.boolean().optional(),
    denyCommentRequired: z.boolean().optional(),
    timeBoundAccess: appSelfServiceConfig.shape.timeBoundAccess,
    appUserAttributes: appSelfServiceConfig.shape.appUserAttributes,
  }),
);

export const appSelfServiceChangedData = exactly<AppSelfServiceChanged>()(
  z.object({
    orgId: string,
    actorId: string,
    appId: string,
    version: z.number().int(),
    before: appSelfServiceConfigStateData.nullable(),
    after: appSelfServiceConfigStateData,
  }),
);

const technicalContactEmail = { orgId: string, requesterId: string, contactEmail: string, technicalContactMessageId: string };

export const technicalContactEmailSentData = exactly<TechnicalContactEmailSent>()(z.object({ ...technicalContactEmail, messageId: string }));

export const technicalContactEmailFailedData = exactly<TechnicalContactEmailFailed>()(z.object({ ...technicalContactEmail, error: string }));

export const accessRequestEventData = exactly<AccessRequestEvent>()(
  z.object({
    orgId: string,
    requestId: string,
    appId: string,
    requesterId: string,
    actorId: optional,
    requestedById: optional,
    step: z.number().int().optional(),
    comment: optional,
    reason: optional,
    currentApproverIds: z.array(string).optional(),
    stepDeadline: z.iso.datetime({ offset: true }).optional(),
    accessEndsAt: z.iso.datetime({ offset: true }).optional(),
    extensionRequestId: optional,
    attributes: z.record(string, string).optional(),
    onBehalfOf: optional,
    delegatedFrom: z.record(string, string).optional(),
    at: z.iso.datetime({ offset: true }),
  }),
);

export const appAssignedData = exactly<AppAssigned>()(
  z.object({ orgId: string, userId: string, appId: string, requestId: optional, grantId: optional, accessEndsAt: z.iso.datetime({ offset: true }).optional(), attributes: z.record(string, string).optional() }),
);

export const appUnassignedData = exactly<AppUnassigned>()(
  z.object({ orgId: string, userId: string, appId: string, requestId: string, grantId: string, reason: z.enum(['ACCESS_ENDED', 'ACCESS_REVOKED']) }),
);

export const personalAppAddedData = exactly<PersonalAppAdded>()(
  z.object({ orgId: string, userId: string, personalAppId: string, catalogAppId: string, username: optional, credentialsSet: z.boolean() }),
);

export const NOT_ELIGIBLE_REASONS = [
  'ORG_MANAGED_APP',
  'PERSONAL_APP_NOT_FOUND',
  'NOT_ADDED_BY_USER',
  'ALREADY_MOVED',
  'NO_USERNAME',
  'USERNAME_NOT_AN_EMAIL',
  'ORG_EMAIL_DOMAIN',
  'BLOCKED_DOMAIN',
] as const satisfies readonly NotEligibleReason[];

export const personalAppMoveResultData = exactly<PersonalAppMoveResult>()(
  z.object({
    personalAppId: string,
    outcome: z.enum(['MOVED', 'NOT_ELIGIBLE']),
    reason: z.enum(NOT_ELIGIBLE_REASONS).optional(),
    detail: optional,
  }),
);

export const personalAppsMovedData = exactly<PersonalAppsMoved>()(
  z.object({
    orgId: string,
    userId: string,
    results: z.array(personalAppMoveResultData),
    exported: z.array(z.object({ personalAppId: string, catalogAppId: string, username: z.string().nullable() })),
    removeFromDashboard: z.boolean(),
  }),
);

export const personalBookmarkAddedData = exactly<PersonalBookmarkAdded>()(
  z.object({ orgId: string, userId: string, bookmarkId: string, name: string, url: z.string().meta({ format: 'uri', description: 'https, normalized (WHATWG URL href).' }) }),
);

export const directoryUserChangedData = exactly<DirectoryUserChanged>()(
  z.object({ orgId: string, userId: string, previousStatus: z.enum(USER_STATUSES), status: z.enum(USER_STATUSES) }),
);

export const directoryGroupChangedData = exactly<DirectoryGroupChanged>()(
  z.object({ orgId: string, groupId: string, addedMemberIds: z.array(string), removedMemberIds: z.array(string) }),
);

export const deadLetterData = exactly<DeadLetter>()(
  z.object({ commandId: string, source: optional, incidentId: string, error: z.literal('INTERNAL_ERROR'), data: z.unknown().optional() }),
);
