/**
 * The request's plan as stored (the `plan` JSON column) and the zod schemas that read it back. Kept
 * apart from app-request.ts so that workflow code, which imports that module's rules, does not carry
 * zod: a reusable V8 context evaluates a workflow's modules again for every workflow it runs.
 */

import { z } from 'zod';

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

/** Escalation of a step at its timeout: to these users and groups (resolved then), with a timeout of its own. */
export const escalationPlanSchema = z.object({
  approvers: z.array(z.object({ type: z.enum(['USER', 'GROUP']), id: z.string() })),
  timeoutDays: z.number(),
  businessDays: z.boolean().optional(),
  reminderDaysBefore: z.number().optional(),
});

export const stepPlanSchema = z.object({
  /** 1-based. */
  number: z.number().int().positive(),
  type: z.enum(['USER', 'GROUP']),
  /** The configured user or group id. */
  sourceId: z.string(),
  approverIds: z.array(z.string()),
  /** Calendar days, or business days of the plan's calendar when `businessDays`. */
  timeoutDays: z.number(),
  businessDays: z.boolean().optional(),
  /** In the unit of the timeout. */
  reminderDaysBefore: z.number().optional(),
  /** Absent: the request expires at the timeout. */
  escalation: escalationPlanSchema.optional(),
  /**
   * Delegation while away: whom each delegate among `approverIds` stands in for (`{delegateId:
   * awayApproverId}`), as resolved with the approvers. Absent: nobody stands in for anyone (and in plans
   * from before delegation).
   */
  delegatedFrom: z.record(z.string(), z.string()).optional(),
  /** The app user attributes this step's approvers see (READ) or may set (WRITE); others are hidden from them. */
  attributes: z.record(z.string(), z.enum(['READ', 'WRITE'])).optional(),
});

const businessCalendarSchema = z.object({
  timeZone: z.string(),
  workingDays: z.array(z.enum(['MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT', 'SUN'])),
  holidays: z.array(z.string()).optional(),
});

/** The approval plan resolved at submission; stored with the request (a JSON column), read back through this schema. */
export const requestPlanSchema = z.object({
  requestId: z.string(),
  orgId: z.string(),
  appId: z.string(),
  appLabel: z.string(),
  /** The requester of record: whose request it is, whose dashboard gets the app. Never an approver. */
  requesterId: z.string(),
  /**
   * Who asked, when not the requester: the requester's manager in the directory, asking on their behalf
   * (`onBehalfOf`). Absent for a request the requester made, and in plans from before requests on behalf.
   */
  requestedById: z.string().optional(),
  /** The justification when the app asks for one (the request's comment: see `justificationProblem`). */
  comment: z.string().optional(),
  /** The app required a justification when the request was made (absent: it did not). */
  justificationRequired: z.boolean().optional(),
  /** The app required a comment to deny when the request was made (absent: it did not). */
  denyCommentRequired: z.boolean().optional(),
  approvalRequired: z.boolean(),
  steps: z.array(stepPlanSchema),
  /** Admins who may decide any step and act on the request: resolved at submission, then again after every directory change. */
  adminIds: z.array(z.string()),
  notifications: notificationsSchema,
  /** The org's business calendar at submission, when one of the steps counts business days. */
  calendar: businessCalendarSchema.optional(),
  /** A time-bound grant: how many days it lasts, when the user is reminded (absent: access does not end). */
  access: z.object({ days: z.number(), reminderDaysBefore: z.number().optional() }).optional(),
  /** An extension: the request id of the time-bound grant it extends (which is not assigned again). */
  extendsRequestId: z.string().optional(),
  /** The app user attributes approvers may set; `required` ones must be set before the grant. */
  appUserAttributes: z.array(z.object({ name: z.string(), required: z.boolean().optional() })).optional(),
});

export type NotificationChoice = z.infer<typeof notificationChoiceSchema>;
export type Notifications = z.infer<typeof notificationsSchema>;
export type StepPlan = z.infer<typeof stepPlanSchema>;
export type EscalationPlan = z.infer<typeof escalationPlanSchema>;
export type RequestPlan = z.infer<typeof requestPlanSchema>;
