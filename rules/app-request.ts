/**
 * The app request's domain model and its pure rules, shared by the workflow (deterministic) and the
 * activities. No I/O here.
 */

import type { NotificationChoice, RequestPlan, StepPlan } from './request-plan';

export const APP_REQUEST_WORKFLOW_PREFIX = 'app-request-';

export function appRequestWorkflowId(requestId: string): string {
  return `${APP_REQUEST_WORKFLOW_PREFIX}${requestId}`;
}

export type RequestStatus = 'SUBMITTED' | 'REJECTED' | 'PENDING' | 'APPROVED' | 'DENIED' | 'EXPIRED' | 'CANCELLED' | 'DELETED';

/** Okta System Log names, plus ours (cancel, reroute, remind, override). */
export type AuditName =
  | 'app.access_request.request'
  | 'app.access_request.approver.approve'
  | 'app.access_request.approver.deny'
  | 'app.access_request.grant'
  | 'app.access_request.deny'
  | 'app.access_request.expire'
  | 'app.access_request.delete'
  | 'app.access_request.cancel'
  | 'app.access_request.reroute'
  | 'app.access_request.remind'
  | 'app.access_request.override'
  | 'app.access_request.escalate'
  | 'app.access_request.access.remind'
  | 'app.access_request.access.extend'
  | 'app.access_request.access.end'
  | 'app.access_request.access.revoke';

/** The plan's shape lives with its schemas (request-plan.ts). */
export type { EscalationPlan, NotificationChoice, Notifications, RequestPlan, StepPlan } from './request-plan';

export type SubmitOutcome =
  | { accepted: true; plan: RequestPlan; eventIds: string[] }
  | { accepted: false; code: string; message: string; eventIds: string[] };

/** One recorded step of the request's life: a history row, the request's new state, its outbound events. */
export interface Transition {
  requestId: string;
  /** Position in the request's history; with the request id it makes the write idempotent. */
  sequence: number;
  name: AuditName;
  at: string;
  actorId?: string;
  step?: number;
  comment?: string;
  reason?: string;
  status?: 'PENDING' | 'APPROVED' | 'DENIED' | 'EXPIRED' | 'CANCELLED' | 'DELETED';
  currentStep?: number | null;
  currentApproverIds?: string[];
  /** The step's new deadline (escalate; ISO 8601). */
  stepDeadline?: string;
  /** When the time-bound grant ends (grant, access.extend; ISO 8601). */
  accessEndsAt?: string;
  /** The extension request that made the grant run longer (access.extend). */
  extensionRequestId?: string;
  /** App user attributes: set by this approval (approver.approve), all of them (grant). */
  attributes?: Record<string, string>;
  /** Take the app off the requester's dashboard (access.end, access.revoke). */
  unassign?: 'ACCESS_ENDED' | 'ACCESS_REVOKED';
  /** Put the app on the requester's dashboard (grant). */
  assign?: boolean;
  /** A decision by a delegate: the away approver they decided for (`actorId` is the delegate). */
  onBehalfOf?: string;
  /** Who stands in for whom among `currentApproverIds` (reroute, escalate). */
  delegatedFrom?: Record<string, string>;
}

/**
 * What a pending request should do after a change: close (and why), or carry on with the current
 * step's approvers and the admins who may decide, as the directory has them now.
 */
export type ReviewVerdict =
  | { close: string }
  | {
      approverIds: string[] | null;
      adminIds?: string[];
      /** Delegates among `approverIds` and whom each stands in for (absent: none, and in histories from before delegation). */
      delegatedFrom?: Record<string, string>;
    };

/**
 * What a review reads of the org, the app and the requester as they are now (or, for a preview, as a
 * proposed change would leave them).
 */
export interface ReviewFacts {
  /** The org's "Allow users to add org-managed app integrations" switch (off when the org has no settings). */
  allowOrgManagedApps: boolean;
  app: { status: string; selfService: { requestsEnabled: boolean; approvalRequired: boolean } | null } | null;
  /** Null when the requester is no longer in the directory. */
  requesterStatus: string | null;
}

/**
 * Why a pending request must close as things are (drift while pending: the org switch off, the app
 * inactive, requests disabled, approval switched off, the requester not active), or null when it may go
 * on. The review of a running request and the preview of a settings change both judge by this.
 */
export function closingReason(plan: RequestPlan, facts: ReviewFacts): string | null {
  if (!facts.allowOrgManagedApps) return 'the org no longer allows users to add org-managed app integrations';
  const { app } = facts;
  if (!app || app.status !== 'ACTIVE') return `the app ${plan.appLabel} is no longer active`;
  if (!app.selfService?.requestsEnabled) return `requests for ${plan.appLabel} were disabled`;
  if (plan.approvalRequired && !app.selfService.approvalRequired) return `approval for ${plan.appLabel} is no longer required; request the app again to get it at once`;
  if (facts.requesterStatus !== 'ACTIVE') return `the requester is ${facts.requesterStatus ?? 'gone'}`;
  return null;
}

/**
 * The verdict on a request that may go on, once its current step's approvers were resolved again
 * (null: no step to resolve): it closes when nobody is left who could approve.
 */
export function stepVerdict(step: StepPlan | null, approverIds: string[] | null, adminIds: string[]): ReviewVerdict {
  if (!step) return { approverIds: null, adminIds };
  if (!approverIds || approverIds.length === 0) return { close: `nobody is left who could approve step ${step.number}` };
  return { approverIds, adminIds };
}

/**
 * Where a review resolves a step's approvers from: its user or group and, once it escalated, its
 * escalation approvers. Each group of sources is resolved on its own (each falls back to the fallback
 * approvers when none of it is left), and the approvers are all of them.
 */
export function reviewSourcesOf(step: StepPlan, escalated: boolean): { type: 'USER' | 'GROUP'; id: string }[][] {
  const escalation = escalated ? step.escalation?.approvers : undefined;
  return [[{ type: step.type, id: step.sourceId }], ...(escalation ? [escalation] : [])];
}

/** The approvers a verdict re-routes the step to, or null when it closes or they are the ones it waits on already (in any order). */
export function reroutedTo(verdict: ReviewVerdict, currentApproverIds: readonly string[]): string[] | null {
  if ('close' in verdict || !verdict.approverIds) return null;
  const { approverIds } = verdict;
  if (approverIds.length === currentApproverIds.length && approverIds.every((id) => currentApproverIds.includes(id))) return null;
  return approverIds;
}

export type Outcome = 'APPROVED' | 'DENIED' | 'EXPIRED' | 'DELETED' | 'CANCELLED';

/**
 * Emails to a step's approvers; `notice` makes each mail unique (request, reminder, resend-2,
 * reroute-3, ...). `plan` is the request's plan as the workflow holds it (histories from before it was
 * passed read it from the database).
 */
export interface ApproversNotice {
  requestId: string;
  step: number;
  approverIds: string[];
  notice: string;
  deadline: string;
  plan?: RequestPlan;
  /** Recipients who are delegates, and whom each stands in for: their email says "on behalf of". */
  delegatedFrom?: Record<string, string>;
  /** The app user attributes set so far that this step's approvers may see (READ or WRITE). */
  attributes?: Record<string, string>;
}

/** The outcome email; who gets it follows the app's notification choices. */
export interface OutcomeNotice {
  requestId: string;
  outcome: Outcome;
  comment?: string;
  reason?: string;
  actorId?: string;
  /** The actor decided as the delegate of this approver. */
  onBehalfOf?: string;
  /** Everyone who was an approver of the request. */
  approverIds: string[];
  plan?: RequestPlan;
  /** A time-bound grant: when the access ends (ISO 8601). */
  accessEndsAt?: string;
}

export interface DecisionInput {
  approverId: string;
  decision: 'APPROVE' | 'DENY';
  comment?: string;
  /** App user attributes set with an approval (only those the step may WRITE). */
  attributes?: Record<string, string>;
  /** The CloudEvent id when the decision came through Kafka. */
  commandId?: string;
  orgId?: string;
}

export interface CancelInput {
  requesterId: string;
  commandId?: string;
  orgId?: string;
}

export type AdminAction = 'RESEND' | 'DELETE' | 'OVERRIDE' | 'REVOKE';

export interface AdminActionInput {
  actorId: string;
  action: AdminAction;
  reason?: string;
  commandId?: string;
  orgId?: string;
}

export interface TimelineEntry {
  sequence: number;
  name: AuditName;
  at: string;
  actorId?: string;
  step?: number;
  comment?: string;
  /** A delegate's decision: the away approver it was made for. */
  onBehalfOf?: string;
}

export interface RequestView {
  requestId: string;
  status: RequestStatus;
  plan: RequestPlan | null;
  currentStep: number | null;
  currentApproverIds: string[];
  stepDeadline: string | null;
  closedReason: string | null;
  timeline: TimelineEntry[];
  /** Delegates among `currentApproverIds` and the away approver each stands in for (absent: none). */
  delegatedFrom?: Record<string, string>;
  /** A time-bound grant: when it ends, whether it is still on the dashboard, how often it was extended. */
  access?: AccessView;
  /** The app user attributes set so far by approvers (the grant carries them). */
  attributes?: Record<string, string>;
}

/** An extension request was granted: the grant it extends runs `days` from now (never shorter than it would have). */
export interface AccessExtension {
  extensionRequestId: string;
  days: number;
}

/** The emails of a time-bound grant's life, to the user whose access it is. */
export interface AccessNotice {
  requestId: string;
  kind: 'ending' | 'ended' | 'revoked';
  /** When the access ends, or ended (ISO 8601). */
  endsAt: string;
  reason?: string;
  /** Makes each mail unique (the transition's sequence). */
  sequence: number;
  plan: RequestPlan;
}

export interface AccessView {
  endsAt: string;
  status: 'ACTIVE' | 'ENDED' | 'REVOKED';
  extensions: number;
}

export interface Problem {
  code: string;
  message: string;
}

export const MAX_COMMENT_LENGTH = 1000;

/** Why a decision cannot be accepted now, or null. Nothing is recorded for a refused decision. */
export function decisionProblem(view: RequestView, decidedSteps: ReadonlySet<number>, input: DecisionInput): Problem | null {
  const { plan } = view;
  if (!plan || view.status !== 'PENDING' || view.currentStep === null) {
    return { code: 'REQUEST_NOT_PENDING', message: `request ${view.requestId} is ${view.status}, not waiting for a decision` };
  }
  if (input.orgId !== undefined && input.orgId !== plan.orgId) {
    return { code: 'REQUEST_NOT_FOUND', message: `request ${view.requestId} is not a request of org ${input.orgId}` };
  }
  if (input.approverId === plan.requesterId) {
    return { code: 'REQUESTER_CANNOT_DECIDE', message: `${input.approverId} made request ${view.requestId} and cannot decide it` };
  }
  if (!view.currentApproverIds.includes(input.approverId) && !plan.adminIds.includes(input.approverId)) {
    return {
      code: 'NOT_CURRENT_APPROVER',
      message: `${input.approverId} is not an approver of step ${view.currentStep} of request ${view.requestId}`,
    };
  }
  if (decidedSteps.has(view.currentStep)) {
    return { code: 'STEP_ALREADY_DECIDED', message: `step ${view.currentStep} of request ${view.requestId} has already been decided` };
  }
  if ((input.comment ?? '').length > MAX_COMMENT_LENGTH) {
    return { code: 'COMMENT_TOO_LONG', message: `the comment has ${input.comment?.length} characters; at most ${MAX_COMMENT_LENGTH} are allowed` };
  }
  const attributes = attributeProblem(view, input);
  if (attributes) return attributes;
  // The flag is the app's configuration when the request was made (plans from before it have none).
  if (input.decision === 'DENY' && plan.denyCommentRequired && isBlank(input.comment)) {
    return {
      code: 'DENY_COMMENT_REQUIRED',
      message: `${plan.appLabel} requires a comment to deny: give the reason for denying request ${view.requestId} in comment`,
    };
  }
  return null;
}

const isBlank = (text: string | undefined) => (text ?? '').trim() === '';

/**
 * App user attributes of a decision: set only with an approval, only those the current step may WRITE;
 * and the approval that grants (the last step's) must leave every required attribute set.
 */
function attributeProblem(view: RequestView, input: DecisionInput): Problem | null {
  const plan = view.plan!;
  const given = Object.keys(input.attributes ?? {});
  const step = plan.steps.find((candidate) => candidate.number === view.currentStep);
  if (given.length > 0 && input.decision === 'DENY') {
    return { code: 'ATTRIBUTES_ONLY_WITH_APPROVAL', message: `attributes (${given.join(', ')}) are set with an approval, not with a denial` };
  }
  const notWritable = given.filter((name) => step?.attributes?.[name] !== 'WRITE');
  if (notWritable.length > 0) {
    return { code: 'ATTRIBUTE_NOT_WRITABLE', message: `step ${view.currentStep} of request ${view.requestId} may not set ${notWritable.join(', ')}` };
  }
  if (input.decision === 'APPROVE' && view.currentStep === plan.steps.length) return missingAttributes(view, input.attributes);
  return null;
}

/** The required attributes still without a value once `adding` is set (a grant needs every one), or null. */
export function missingAttributes(view: RequestView, adding: Record<string, string> = {}): Problem | null {
  const set = { ...view.attributes, ...adding };
  const missing = (view.plan?.appUserAttributes ?? []).filter((attribute) => attribute.required && !set[attribute.name]).map((attribute) => attribute.name);
  if (missing.length === 0) return null;
  return { code: 'ATTRIBUTE_REQUIRED', message: `${view.plan?.appLabel} needs ${missing.join(', ')} set by an approver before request ${view.requestId} is granted` };
}

/**
 * Who a request command names: the requester of record (`onBehalfOf` when given, else the caller
 * `userId`) and, for a request on behalf of someone else, who asked (the caller). `onBehalfOf` equal to
 * `userId` is a request for oneself.
 */
export function requesterOf(data: { userId: string; onBehalfOf?: string }): { requesterId: string; requestedById?: string } {
  if (data.onBehalfOf === undefined || data.onBehalfOf === data.userId) return { requesterId: data.userId };
  return { requesterId: data.onBehalfOf, requestedById: data.userId };
}

/**
 * The app asks for a justification: the request's comment, not blank. Why the submission is refused,
 * or null.
 */
export function justificationProblem(app: { id: string; label: string; justificationRequired: boolean }, comment: string | undefined): Problem | null {
  if (!app.justificationRequired || !isBlank(comment)) return null;
  return {
    code: 'JUSTIFICATION_REQUIRED',
    message: `app ${app.id} (${app.label}) requires a justification: give the reason for the request in comment (1 to ${MAX_COMMENT_LENGTH} characters)`,
  };
}

/**
 * A request on behalf of someone else: only their manager in the directory (the user's `managerId`)
 * may make it. Why not, or null. The report's own checks (active, app available, ...) follow.
 */
export function onBehalfProblem(requestedById: string, report: { id: string; managerId: string | null }): Problem | null {
  if (report.managerId === requestedById) return null;
  return {
    code: 'NOT_MANAGER',
    message: `user ${requestedById} is not the manager of user ${report.id} in the directory; only a user's manager may request apps on their behalf`,
  };
}

export function cancelProblem(view: RequestView, input: CancelInput): Problem | null {
  if (!view.plan || view.status !== 'PENDING') {
    return { code: 'REQUEST_NOT_PENDING', message: `request ${view.requestId} is ${view.status} and can no longer be cancelled` };
  }
  if (input.orgId !== undefined && input.orgId !== view.plan.orgId) {
    return { code: 'REQUEST_NOT_FOUND', message: `request ${view.requestId} is not a request of org ${input.orgId}` };
  }
  // The manager who asked on the requester's behalf may take it back too.
  if (input.requesterId !== view.plan.requesterId && input.requesterId !== view.plan.requestedById) {
    return { code: 'NOT_REQUESTER', message: `only the requester (or the manager who asked on their behalf) may cancel request ${view.requestId}` };
  }
  return null;
}

export function adminActionProblem(view: RequestView, input: AdminActionInput): Problem | null {
  if (input.action === 'REVOKE') {
    if (!view.plan || view.access?.status !== 'ACTIVE') {
      return { code: 'NO_ACTIVE_GRANT', message: `request ${view.requestId} has no time-bound access that is still active; REVOKE applies only to one` };
    }
  } else if (!view.plan || view.status !== 'PENDING') {
    return { code: 'REQUEST_NOT_PENDING', message: `request ${view.requestId} is ${view.status}; ${input.action} applies only to pending requests` };
  }
  if (input.orgId !== undefined && input.orgId !== view.plan.orgId) {
    return { code: 'REQUEST_NOT_FOUND', message: `request ${view.requestId} is not a request of org ${input.orgId}` };
  }
  if (input.action === 'OVERRIDE') {
    const missing = missingAttributes(view);
    if (missing) return missing;
  }
  if (!view.plan.adminIds.includes(input.actorId)) {
    return {
      code: 'NOT_AUTHORIZED',
      message: `${input.actorId} is not an active super admin, or app admin of ${view.plan.appId}, other than the requester; only they may ${input.action.toLowerCase()} request ${view.requestId}`,
    };
  }
  return null;
}

export const MAX_ACCESS_DAYS = 3650;

/** The per-app time-bound access, as configured. */
export interface TimeBoundAccess {
  maxDays: number;
  requesterPicksDuration?: boolean;
  reminderDaysBefore?: number;
}

/**
 * How long a grant of this app lasts for this request (null: it does not end), or why the requested
 * duration cannot be had. Without a pick the grant lasts the app's maximum.
 */
export function accessFor(config: TimeBoundAccess | null | undefined, appLabel: string, accessDays: number | undefined): { days: number; reminderDaysBefore?: number } | null | Problem {
  if (!config) {
    if (accessDays === undefined) return null;
    return { code: 'ACCESS_DURATION_NOT_OFFERED', message: `access to ${appLabel} does not end, so accessDays (${accessDays}) cannot be chosen` };
  }
  if (accessDays !== undefined && !config.requesterPicksDuration && accessDays !== config.maxDays) {
    return { code: 'ACCESS_DURATION_FIXED', message: `access to ${appLabel} lasts ${config.maxDays} days; the requester cannot choose accessDays (${accessDays})` };
  }
  if (accessDays !== undefined && accessDays > config.maxDays) {
    return { code: 'ACCESS_DURATION_TOO_LONG', message: `accessDays is ${accessDays}; access to ${appLabel} lasts at most ${config.maxDays} days` };
  }
  const days = accessDays ?? config.maxDays;
  const reminder = config.reminderDaysBefore !== undefined && config.reminderDaysBefore < days ? { reminderDaysBefore: config.reminderDaysBefore } : {};
  return { days, ...reminder };
}

/** Which recipients an outcome notice goes to; the requester is told by default. */
export function outcomeRecipients(choice: NotificationChoice | undefined): Required<NotificationChoice> {
  return { requester: choice?.requester ?? true, approvers: choice?.approvers ?? false, others: choice?.others ?? [] };
}

export const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Temporal refuses a search attribute value over 2 KB by default. The approver list is kept under a
 * budget: when a step's approvers do not fit, the value holds `group:<groupId>` for a group step and
 * as many approver ids as fit, so a large group's requests are still found by its group.
 */
export const APPROVER_SEARCH_BUDGET_BYTES = 1800;

export function searchableApprovers(approverIds: readonly string[], groupId?: string): string[] {
  const size = (ids: readonly string[]) => ids.reduce((total, id) => total + utf8Bytes(id) + 3, 2);
  if (size(approverIds) <= APPROVER_SEARCH_BUDGET_BYTES) return [...approverIds];
  const kept: string[] = groupId ? [`group:${groupId}`] : [];
  for (const id of approverIds) {
    if (size([...kept, id]) > APPROVER_SEARCH_BUDGET_BYTES) break;
    kept.push(id);
  }
  return kept;
}

/** UTF-8 length without Node's Buffer (not available in the workflow sandbox). */
function utf8Bytes(text: string): number {
  let bytes = 0;
  for (const char of text) {
    const code = char.codePointAt(0) ?? 0;
    bytes += code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
  }
  return bytes;
}
