/**
 * The app request's domain model and its pure rules, shared by the workflow (deterministic) and the
 * activities. No I/O here.
 */

import { z } from 'zod';

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
  | 'app.access_request.override';

/** Who hears of an outcome: the requester (by default), the approvers, other addresses. */
const notificationChoiceSchema = z.object({
  requester: z.boolean().optional(),
  approvers: z.boolean().optional(),
  others: z.array(z.string()).optional(),
});

export const notificationsSchema = z.object({
  onApprove: notificationChoiceSchema.optional(),
  onDeny: notificationChoiceSchema.optional(),
  onExpire: notificationChoiceSchema.optional(),
});

export const stepPlanSchema = z.object({
  /** 1-based. */
  number: z.number().int().positive(),
  type: z.enum(['USER', 'GROUP']),
  /** The configured user or group id. */
  sourceId: z.string(),
  approverIds: z.array(z.string()),
  timeoutDays: z.number(),
  reminderDaysBefore: z.number().optional(),
});

/** The approval plan resolved at submission; stored with the request (a JSON column), read back through this schema. */
export const requestPlanSchema = z.object({
  requestId: z.string(),
  orgId: z.string(),
  appId: z.string(),
  appLabel: z.string(),
  requesterId: z.string(),
  comment: z.string().optional(),
  approvalRequired: z.boolean(),
  steps: z.array(stepPlanSchema),
  /** Admins who may decide any step and act on the request: resolved at submission, then again after every directory change. */
  adminIds: z.array(z.string()),
  notifications: notificationsSchema,
});

export type NotificationChoice = z.infer<typeof notificationChoiceSchema>;
export type Notifications = z.infer<typeof notificationsSchema>;
export type StepPlan = z.infer<typeof stepPlanSchema>;
export type RequestPlan = z.infer<typeof requestPlanSchema>;

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
  /** Put the app on the requester's dashboard (grant). */
  assign?: boolean;
}

/**
 * What a pending request should do after a change: close (and why), or carry on with the current
 * step's approvers and the admins who may decide, as the directory has them now.
 */
export type ReviewVerdict = { close: string } | { approverIds: string[] | null; adminIds?: string[] };

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
}

/** The outcome email; who gets it follows the app's notification choices. */
export interface OutcomeNotice {
  requestId: string;
  outcome: Outcome;
  comment?: string;
  reason?: string;
  actorId?: string;
  /** Everyone who was an approver of the request. */
  approverIds: string[];
  plan?: RequestPlan;
}

export interface DecisionInput {
  approverId: string;
  decision: 'APPROVE' | 'DENY';
  comment?: string;
  /** The CloudEvent id when the decision came through Kafka. */
  commandId?: string;
  orgId?: string;
}

export interface CancelInput {
  requesterId: string;
  commandId?: string;
  orgId?: string;
}

export type AdminAction = 'RESEND' | 'DELETE' | 'OVERRIDE';

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
  return null;
}

export function cancelProblem(view: RequestView, input: CancelInput): Problem | null {
  if (!view.plan || view.status !== 'PENDING') {
    return { code: 'REQUEST_NOT_PENDING', message: `request ${view.requestId} is ${view.status} and can no longer be cancelled` };
  }
  if (input.orgId !== undefined && input.orgId !== view.plan.orgId) {
    return { code: 'REQUEST_NOT_FOUND', message: `request ${view.requestId} is not a request of org ${input.orgId}` };
  }
  if (input.requesterId !== view.plan.requesterId) {
    return { code: 'NOT_REQUESTER', message: `only the requester may cancel request ${view.requestId}` };
  }
  return null;
}

export function adminActionProblem(view: RequestView, input: AdminActionInput): Problem | null {
  if (!view.plan || view.status !== 'PENDING') {
    return { code: 'REQUEST_NOT_PENDING', message: `request ${view.requestId} is ${view.status}; ${input.action} applies only to pending requests` };
  }
  if (input.orgId !== undefined && input.orgId !== view.plan.orgId) {
    return { code: 'REQUEST_NOT_FOUND', message: `request ${view.requestId} is not a request of org ${input.orgId}` };
  }
  if (!view.plan.adminIds.includes(input.actorId)) {
    return {
      code: 'NOT_AUTHORIZED',
      message: `${input.actorId} is not an active super admin, or app admin of ${view.plan.appId}, other than the requester; only they may ${input.action.toLowerCase()} request ${view.requestId}`,
    };
  }
  return null;
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
