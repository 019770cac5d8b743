import type { AppSelfServiceConfigInput, BusinessCalendarInput, USER_STATUSES } from './inbound';
import type { TopicName } from './topics';

/**
 * Outbound events of the public contract (product spec section 4). The backend emits binary mode.
 *
 * Every outbound event is built by ONE function of `outboundEvents`, which fixes its topic, its type and
 * its Kafka key (and so its partition and the order consumers see); the data interfaces below are what
 * integration partners read. Fields that are `undefined` are left out on the wire (the data is stored as
 * JSON). The outbox (`activities/outbox.ts`, `enqueueEvents`) writes the events in the transaction of
 * their effect; the relay publishes them.
 */

export const EVENT_SOURCE = 'urn:selfservice-backend';

export const OutboundTypes = {
  commandAccepted: 'selfservice.command.accepted.v1',
  commandRejected: 'selfservice.command.rejected.v1',
  settingsChanged: 'selfservice.settings.changed.v1',
  /**
   * Reserved, not emitted: a Technical Contact change is a `settingsChanged` whose `changed` is
   * `["technicalContactUserId"]` (README, public contract). No builder.
   */
  technicalContactChanged: 'selfservice.technical-contact.changed.v1',
  appSelfServiceChanged: 'selfservice.app.self-service-changed.v1',
  businessCalendarChanged: 'selfservice.settings.business-calendar-changed.v1',
  delegationChanged: 'selfservice.delegation.changed.v1',
  technicalContactEmailSent: 'selfservice.technical-contact.email-sent.v1',
  technicalContactEmailFailed: 'selfservice.technical-contact.email-failed.v1',
  appAssigned: 'selfservice.dashboard.app-assigned.v1',
  personalAppAdded: 'selfservice.dashboard.personal-app-added.v1',
  personalAppsMoved: 'selfservice.dashboard.personal-apps-moved.v1',
  personalBookmarkAdded: 'selfservice.dashboard.personal-bookmark-added.v1',
  appUnassigned: 'selfservice.dashboard.app-unassigned.v1',
  directoryUserChanged: 'selfservice.directory.user-changed.v1',
  directoryGroupChanged: 'selfservice.directory.group-changed.v1',
} as const;

/** An audit name of an access request's life (product spec section 3), e.g. `app.access_request.grant`. */
export type AccessRequestEventName = `app.access_request.${string}`;

/**
 * The audit names the backend publishes on the access-requests topic (the rules' `AuditName`; a test
 * keeps the two lists equal), for the AsyncAPI document.
 */
export const ACCESS_REQUEST_EVENT_NAMES = [
  'app.access_request.request',
  'app.access_request.approver.approve',
  'app.access_request.approver.deny',
  'app.access_request.grant',
  'app.access_request.deny',
  'app.access_request.expire',
  'app.access_request.delete',
  'app.access_request.cancel',
  'app.access_request.reroute',
  'app.access_request.remind',
  'app.access_request.override',
  'app.access_request.escalate',
  'app.access_request.access.remind',
  'app.access_request.access.extend',
  'app.access_request.access.end',
  'app.access_request.access.revoke',
] as const satisfies readonly AccessRequestEventName[];

export function accessRequestEventType(auditName: string): string {
  return `selfservice.${auditName}.v1`;
}

/** An outbound event as its builder makes it: where it goes, what it is, its key and its data. */
export interface OutboundDraft {
  topic: TopicName;
  type: string;
  key: string;
  data: Record<string, unknown>;
}

/**
 * An event waiting in the outbox. Its `id` is deterministic (derived from the command or request that
 * caused it), so a retried publish carries the same CloudEvent id and consumers can drop the copy.
 */
export interface OutboundEvent extends OutboundDraft {
  id: string;
  time: string;
  /** W3C trace context of the work that wrote the event (CloudEvents distributed-tracing extension). */
  traceparent?: string;
  tracestate?: string;
}

// --- data of each outbound type ------------------------------------------------------------------

/** `selfservice.command.accepted.v1`: the command, plus what its acceptance produced (requestId, workflowId, version, ...). */
export interface CommandAccepted {
  commandId: string;
  commandType: string;
  orgId?: string;
  requestId?: string;
  workflowId?: string;
  /** The answer to a preview command (settings.preview-requested, app.self-service-preview-requested). */
  preview?: ChangePreview;
  [detail: string]: unknown;
}

/** A pending request a previewed change would close as DELETED, with the reason the request would give. */
export interface PreviewClose {
  requestId: string;
  appId: string;
  requesterId: string;
  reason: string;
}

/** A pending request whose current step a previewed change would re-route. */
export interface PreviewReroute {
  requestId: string;
  appId: string;
  requesterId: string;
  step: number;
  fromApproverIds: string[];
  toApproverIds: string[];
}

export const PREVIEW_FLOWS = [
  'ORG_MANAGED_APP_REQUESTS',
  'PERSONAL_APP_ADDS',
  'TECHNICAL_CONTACT_MESSAGES',
  'MOVE_TO_OKTA_PERSONAL',
  'APP_REQUESTS',
  'APP_APPROVAL',
] as const;

/** Something users could do until now that a previewed change switches off. */
export interface PreviewTurnOff {
  flow: (typeof PREVIEW_FLOWS)[number];
  /** The org switch or the app's configuration field that turns it off. */
  setting: string;
  appId?: string;
  /** What it means for users, in words (with what stays: tiles already added, messages already accepted). */
  effect: string;
  /** ORG_MANAGED_APP_REQUESTS: the apps users may request until now (Available Apps), at most the list limit. */
  appIds?: string[];
  appIdsTotal?: number;
}

/**
 * What a settings or per-app change would do, computed against a version without changing anything.
 * Lists hold at most `listLimit` entries each (and about 256 KiB together); the totals count them all.
 */
export interface ChangePreview {
  /** The change previewed: `selfservice.settings.update-requested.v1` or `selfservice.app.self-service-configured.v1`. */
  change: string;
  appId?: string;
  /** Send the change with this as `expectedVersion` to make exactly the change previewed. */
  computedAgainstVersion: number;
  /** The version the change would make; null when it would change nothing (accepted, neither versioned nor announced). */
  wouldBeVersion: number | null;
  noChange: boolean;
  /** The settings or configuration fields the change would change. */
  changed: string[];
  /** How many pending requests the change would tell to review themselves (each was judged). */
  pendingReviewed: number;
  wouldClose: PreviewClose[];
  wouldCloseTotal: number;
  wouldReroute: PreviewReroute[];
  wouldRerouteTotal: number;
  wouldTurnOff: PreviewTurnOff[];
  /** A list holds fewer entries than its total. */
  truncated: boolean;
  listLimit: number;
}

/** `selfservice.command.rejected.v1`: the command, its code and message, plus details (existingRequestId, retryAfter, incidentId, ...). */
export interface CommandRejected {
  commandId: string;
  commandType: string;
  orgId?: string;
  code: string;
  message: string;
  requestId?: string;
  workflowId?: string;
  [detail: string]: unknown;
}

/** The org's Self Service switches and Technical Contact, as announced before and after a change. */
export interface SettingsSnapshot {
  allowOrgManagedApps: boolean;
  allowPersonalApps: boolean;
  allowTechnicalContactRequests: boolean;
  allowMoveToOktaPersonal: boolean;
  technicalContactUserId: string | null;
}

/** `selfservice.settings.changed.v1`; `reason` when the backend changed a setting on its own. */
export interface SettingsChanged {
  orgId: string;
  actorId: string;
  version: number;
  before: SettingsSnapshot;
  after: SettingsSnapshot;
  changed: (keyof SettingsSnapshot)[];
  reason?: string;
}

/** `selfservice.settings.business-calendar-changed.v1`; null: no calendar (business days are Monday to Friday in UTC). */
export interface BusinessCalendarChanged {
  orgId: string;
  actorId: string;
  before: BusinessCalendarInput | null;
  after: BusinessCalendarInput | null;
}

export type ApproverStepConfig = NonNullable<AppSelfServiceConfigInput['approverSteps']>[number];

/** An app's Self Service configuration as stored and announced. */
export interface AppSelfServiceConfigState {
  requestsEnabled: boolean;
  approvalRequired: boolean;
  noteForRequester: string | null;
  approverSteps: ApproverStepConfig[];
  notifications: NonNullable<AppSelfServiceConfigInput['notifications']>;
  fallbackApproverIds: string[];
  /** Requesters must give a justification (the request's comment). */
  justificationRequired?: boolean;
  /** Approvers must give a comment to deny. */
  denyCommentRequired?: boolean;
  /** Grants end: at most `maxDays` (absent: access does not end). */
  timeBoundAccess?: NonNullable<AppSelfServiceConfigInput['timeBoundAccess']>;
  /** The app user attributes approvers may see or set (absent: none). */
  appUserAttributes?: NonNullable<AppSelfServiceConfigInput['appUserAttributes']>;
}

/** `selfservice.app.self-service-changed.v1` (on the settings topic); `before` is null for a first configuration. */
export interface AppSelfServiceChanged {
  orgId: string;
  actorId: string;
  appId: string;
  version: number;
  before: AppSelfServiceConfigState | null;
  after: AppSelfServiceConfigState;
}

interface TechnicalContactEmail {
  orgId: string;
  requesterId: string;
  contactEmail: string;
  /** The backend's id of the user's message (`tcm-...`). */
  technicalContactMessageId: string;
}

/** `selfservice.technical-contact.email-sent.v1`; `messageId` is the SMTP Message-ID. */
export interface TechnicalContactEmailSent extends TechnicalContactEmail {
  messageId: string;
}

/** `selfservice.technical-contact.email-failed.v1`. */
export interface TechnicalContactEmailFailed extends TechnicalContactEmail {
  error: string;
}

/** `selfservice.app.access_request.<name>.v1`: one step of an access request's life. */
export interface AccessRequestEvent {
  orgId: string;
  requestId: string;
  appId: string;
  requesterId: string;
  actorId?: string;
  /** On the `request` event of a request made on behalf of the requester: the manager who asked (also its actorId). */
  requestedById?: string;
  step?: number;
  comment?: string;
  reason?: string;
  /** Who may decide the step now (`reroute`, `escalate`). */
  currentApproverIds?: string[];
  /** When the step times out now (`escalate`; ISO 8601). */
  stepDeadline?: string;
  /** When a time-bound grant ends (`grant`, `access.extend`; ISO 8601). */
  accessEndsAt?: string;
  /** The extension request that made the grant run longer (`access.extend`). */
  extensionRequestId?: string;
  /** App user attributes: set by this approval (`approver.approve`), all of them (`grant`). */
  attributes?: Record<string, string>;
  /**
   * A decision by a delegate (`approver.approve`, `approver.deny`, `deny`): the approver they stand in
   * for while that one is away (delegation); `actorId` is the delegate who decided.
   */
  onBehalfOf?: string;
  /** Who stands in for whom among `currentApproverIds` (`reroute`, `escalate`): `{delegateId: awayApproverId}`. */
  delegatedFrom?: Record<string, string>;
  /** When it happened (ISO 8601). */
  at: string;
}

/**
 * `selfservice.delegation.changed.v1` (on the settings topic): a user set a delegation while away, or
 * cancelled one. Times are ISO 8601; the period runs from `start` until `end` (exclusive).
 */
export interface DelegationChanged {
  orgId: string;
  /** Who is away (who set the delegation). */
  userId: string;
  delegationId: string;
  delegateId: string;
  start: string;
  end: string;
  reason?: string;
  /** SET: a new period; CANCELLED: withdrawn (a period in force ends at `cancelledAt`). */
  change: 'SET' | 'CANCELLED';
  cancelledAt?: string;
}

/** `selfservice.dashboard.app-assigned.v1`: the app is on the user's dashboard. */
export interface AppAssigned {
  orgId: string;
  userId: string;
  appId: string;
  requestId?: string;
  /** A time-bound grant: its id (the request's id) and when it ends (ISO 8601). */
  grantId?: string;
  accessEndsAt?: string;
  /** The app user attributes the approvers set, for the app's provisioning. */
  attributes?: Record<string, string>;
}

/** `selfservice.dashboard.app-unassigned.v1`: a time-bound grant ended (its time ran out, or an admin revoked it). */
export interface AppUnassigned {
  orgId: string;
  userId: string;
  appId: string;
  requestId: string;
  grantId: string;
  reason: 'ACCESS_ENDED' | 'ACCESS_REVOKED';
}

/** `selfservice.dashboard.personal-app-added.v1`. No credential ever: only whether it was set. */
export interface PersonalAppAdded {
  orgId: string;
  userId: string;
  personalAppId: string;
  catalogAppId: string;
  username?: string;
  credentialsSet: boolean;
}

/** `selfservice.dashboard.personal-bookmark-added.v1`: a link on the user's dashboard (`url` normalized, https, never a credential). */
export interface PersonalBookmarkAdded {
  orgId: string;
  userId: string;
  bookmarkId: string;
  name: string;
  url: string;
}

export type NotEligibleReason =
  | 'ORG_MANAGED_APP'
  | 'PERSONAL_APP_NOT_FOUND'
  | 'NOT_ADDED_BY_USER'
  | 'ALREADY_MOVED'
  | 'NO_USERNAME'
  | 'USERNAME_NOT_AN_EMAIL'
  | 'ORG_EMAIL_DOMAIN'
  | 'BLOCKED_DOMAIN';

/** What became of one app of a move to Okta Personal. */
export interface PersonalAppMoveResult {
  personalAppId: string;
  outcome: 'MOVED' | 'NOT_ELIGIBLE';
  reason?: NotEligibleReason;
  detail?: string;
}

/** `selfservice.dashboard.personal-apps-moved.v1`; `exported` is what Okta Personal needs to recreate each moved tile. */
export interface PersonalAppsMoved {
  orgId: string;
  userId: string;
  results: PersonalAppMoveResult[];
  exported: { personalAppId: string; catalogAppId: string; username: string | null }[];
  removeFromDashboard: boolean;
}

export type DirectoryUserStatus = (typeof USER_STATUSES)[number];

/** `selfservice.directory.user-changed.v1` (internal topic): a user's status changed. */
export interface DirectoryUserChanged {
  orgId: string;
  userId: string;
  previousStatus: DirectoryUserStatus;
  status: DirectoryUserStatus;
}

/** `selfservice.directory.group-changed.v1` (internal topic): a group's members changed. */
export interface DirectoryGroupChanged {
  orgId: string;
  groupId: string;
  addedMemberIds: string[];
  removedMemberIds: string[];
}

/** Data of the dead-letter copy of a command that failed permanently; `source` and `data` are left out when even they could not be stored. */
export interface DeadLetter {
  commandId: string;
  source?: string;
  incidentId: string;
  error: 'INTERNAL_ERROR';
  /** The validated command's data. */
  data?: unknown;
}

// --- the builders --------------------------------------------------------------------------------

const draft = (topic: TopicName, type: string, key: string, data: object): OutboundDraft => ({ topic, type, key, data: data as Record<string, unknown> });

/**
 * One builder per outbound type. The caller gives the data; the builder fixes topic, type and key. The
 * event id is the caller's (`<commandId>:<name>` through the ledger, `<requestId>:<sequence>`, ...).
 */
export const outboundEvents = {
  /** command-results; key: the org, else the command id. */
  commandAccepted(data: CommandAccepted): OutboundDraft {
    return draft('commandResults', OutboundTypes.commandAccepted, data.orgId ?? data.commandId, data);
  },
  /** command-results; key: the org, else the command id. */
  commandRejected(data: CommandRejected): OutboundDraft {
    return draft('commandResults', OutboundTypes.commandRejected, data.orgId ?? data.commandId, data);
  },
  /** settings; key: orgId. */
  settingsChanged(data: SettingsChanged): OutboundDraft {
    return draft('settings', OutboundTypes.settingsChanged, data.orgId, data);
  },
  /** settings; key: orgId. */
  appSelfServiceChanged(data: AppSelfServiceChanged): OutboundDraft {
    return draft('settings', OutboundTypes.appSelfServiceChanged, data.orgId, data);
  },
  /** settings; key: orgId. */
  businessCalendarChanged(data: BusinessCalendarChanged): OutboundDraft {
    return draft('settings', OutboundTypes.businessCalendarChanged, data.orgId, data);
  },
  /** settings; key: orgId (an org's delegations stay in order with its settings). */
  delegationChanged(data: DelegationChanged): OutboundDraft {
    return draft('settings', OutboundTypes.delegationChanged, data.orgId, data);
  },
  /** technical-contact-emails; key: orgId. */
  technicalContactEmailSent(data: TechnicalContactEmailSent): OutboundDraft {
    return draft('technicalContactEmails', OutboundTypes.technicalContactEmailSent, data.orgId, data);
  },
  /** technical-contact-emails; key: orgId. */
  technicalContactEmailFailed(data: TechnicalContactEmailFailed): OutboundDraft {
    return draft('technicalContactEmails', OutboundTypes.technicalContactEmailFailed, data.orgId, data);
  },
  /** access-requests, type `selfservice.<auditName>.v1`; key: requestId (one request's steps stay in order). */
  accessRequest(auditName: AccessRequestEventName, data: AccessRequestEvent): OutboundDraft {
    return draft('accessRequests', accessRequestEventType(auditName), data.requestId, data);
  },
  /** dashboard; key: userId (the user whose dashboard it is). */
  appAssigned(data: AppAssigned): OutboundDraft {
    return draft('dashboard', OutboundTypes.appAssigned, data.userId, data);
  },
  /** dashboard; key: userId (the user whose dashboard it is). */
  appUnassigned(data: AppUnassigned): OutboundDraft {
    return draft('dashboard', OutboundTypes.appUnassigned, data.userId, data);
  },
  /** dashboard; key: orgId. */
  personalAppAdded(data: PersonalAppAdded): OutboundDraft {
    return draft('dashboard', OutboundTypes.personalAppAdded, data.orgId, data);
  },
  /** dashboard; key: orgId. */
  personalAppsMoved(data: PersonalAppsMoved): OutboundDraft {
    return draft('dashboard', OutboundTypes.personalAppsMoved, data.orgId, data);
  },
  /** dashboard; key: orgId (as personal apps). */
  personalBookmarkAdded(data: PersonalBookmarkAdded): OutboundDraft {
    return draft('dashboard', OutboundTypes.personalBookmarkAdded, data.orgId, data);
  },
  /** directory-changes (internal); key: orgId. */
  directoryUserChanged(data: DirectoryUserChanged): OutboundDraft {
    return draft('directoryChanges', OutboundTypes.directoryUserChanged, data.orgId, data);
  },
  /** directory-changes (internal); key: orgId. */
  directoryGroupChanged(data: DirectoryGroupChanged): OutboundDraft {
    return draft('directoryChanges', OutboundTypes.directoryGroupChanged, data.orgId, data);
  },
  /** dlq, type: the command's own type; key: the command's org, else its id. */
  deadLetter(command: { type: string; orgId?: string }, data: DeadLetter): OutboundDraft {
    return draft('deadLetters', command.type, command.orgId ?? data.commandId, data);
  },
};
