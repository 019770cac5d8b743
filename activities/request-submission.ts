import { z } from 'zod';
import { appSelfServiceConfig, approverStep, businessCalendar, type Command } from '../events/inbound';
import { outboundEvents } from '../events/outbound';
import {
  accessFor,
  appRequestWorkflowId,
  justificationProblem,
  MAX_COMMENT_LENGTH,
  onBehalfProblem,
  requesterOf,
  type RequestPlan,
  type StepPlan,
  type SubmitOutcome,
  type TimeBoundAccess,
} from '../rules/app-request';
import { notificationsSchema, requestPlanSchema } from '../rules/request-plan';
import { DEFAULT_BUSINESS_CALENDAR, type BusinessCalendar, type StepTiming } from '../rules/business-calendar';
import { CommandRejection, commandRef, type AuditDraft, type CommandResult } from '../rules/commands';
import { requestIdFor } from '../rules/identifiers';
import { requestAdminsOf } from './admin-authorization';
import { resolveStepApprovers } from './approvers';
import { acceptedWrite, findRecorded, recordRejected } from './command-ledger';
import type { Database } from './database';
import { outboxRowsOf } from './outbox';
import { parseStored } from './stored';

/**
 * The submission of an org-managed app request: the org's, the user's and the app's rules checked
 * against the data read at once (its reads go out together), the approval plan resolved, then the
 * request, its first history row, the command's accepted result and their outbox rows written by ONE
 * statement. A rejection is recorded as the command's result. A retry finds the recorded result.
 */

type AppRequestedCommand = Extract<Command, { type: 'selfservice.app.requested.v1' }>;

/** The approver steps as the app's configuration stores them (a JSON column). */
const storedStepsSchema = z.array(approverStep);

/**
 * The org, the requester (and who asks for them), and the app as the rules need them; the reads go out
 * together (no transaction: nothing is written yet). The requester of record is `onBehalfOf` when a
 * manager asks for a direct report (see `requesterOf`): every check of the requester is theirs.
 */
async function checkSubmission(db: Database, command: AppRequestedCommand) {
  const { orgId, appId, comment } = command.data;
  const { requesterId, requestedById } = requesterOf(command.data);
  const [settings, user, asker, app, assigned, pending, adminIds] = await Promise.all([
    db.orgSettings.findUnique({ where: { orgId } }),
    db.user.findUnique({ where: { id: requesterId } }),
    requestedById ? db.user.findUnique({ where: { id: requestedById } }) : null,
    db.orgApp.findUnique({ where: { id: appId }, include: { selfService: true } }),
    db.appAssignment.findUnique({ where: { userId_appId: { userId: requesterId, appId } } }),
    db.appRequest.findFirst({ where: { requesterId, appId, status: 'PENDING' } }),
    requestAdminsOf(db, { orgId, appId, requesterId }),
  ]);
  if (!settings) throw new CommandRejection('ORG_NOT_FOUND', `org ${orgId} is unknown`);
  if (!settings.allowOrgManagedApps) {
    throw new CommandRejection('ORG_MANAGED_APPS_DISABLED', `org ${orgId} does not allow users to add org-managed app integrations`);
  }
  // On behalf of someone: who asks must be an active user of the org and the report's manager, before anything of the report is told.
  if (requestedById) {
    if (!asker || asker.orgId !== orgId) throw new CommandRejection('USER_NOT_FOUND', `user ${requestedById} (userId, who asks) is not a user of org ${orgId}`);
    if (asker.status !== 'ACTIVE') throw new CommandRejection('USER_NOT_ACTIVE', `user ${requestedById} (userId, who asks) is ${asker.status} and cannot request apps`);
    if (!user || user.orgId !== orgId) throw new CommandRejection('USER_NOT_FOUND', `user ${requesterId} (onBehalfOf) is not a user of org ${orgId}`);
    const notManager = onBehalfProblem(requestedById, user);
    if (notManager) throw new CommandRejection(notManager.code, notManager.message);
  }
  if (!user || user.orgId !== orgId) throw new CommandRejection('USER_NOT_FOUND', `user ${requesterId} is not a user of org ${orgId}`);
  if (user.status !== 'ACTIVE') {
    throw new CommandRejection(
      'USER_NOT_ACTIVE',
      requestedById ? `user ${requesterId} (onBehalfOf) is ${user.status}; apps cannot be requested for them` : `user ${requesterId} is ${user.status} and cannot request apps`,
    );
  }
  if (!app || app.orgId !== orgId) throw new CommandRejection('APP_NOT_FOUND', `app ${appId} is not an app integration of org ${orgId}`);
  if (app.status !== 'ACTIVE') throw new CommandRejection('APP_INACTIVE', `app ${appId} (${app.label}) is inactive`);
  if (!app.selfService?.requestsEnabled) {
    throw new CommandRejection('APP_NOT_REQUESTABLE', `app ${appId} (${app.label}) does not allow Self Service requests`);
  }
  if ((comment ?? '').length > MAX_COMMENT_LENGTH) {
    throw new CommandRejection('COMMENT_TOO_LONG', `the comment has ${comment?.length} characters; at most ${MAX_COMMENT_LENGTH} are allowed`);
  }
  const unjustified = justificationProblem({ id: appId, label: app.label, justificationRequired: app.selfService.justificationRequired }, comment);
  if (unjustified) throw new CommandRejection(unjustified.code, unjustified.message);
  const access = accessFor(timeBoundAccessOf(app.selfService.timeBoundAccess, appId), app.label, command.data.accessDays);
  if (access && 'code' in access) throw new CommandRejection(access.code, access.message);
  const { extendsRequestId } = command.data;
  if (extendsRequestId) {
    await checkExtension(db, { orgId, appId, requesterId, extendsRequestId, label: app.label });
    if (!access) throw new CommandRejection('EXTENSION_NOT_OFFERED', `access to ${app.label} no longer ends, so there is nothing to extend; grant ${extendsRequestId} ends as it was granted`);
  } else if (assigned) {
    throw new CommandRejection('ALREADY_ASSIGNED', `user ${requesterId} already has ${app.label} on their dashboard`);
  }
  if (pending) {
    throw new CommandRejection(
      'DUPLICATE_PENDING_REQUEST',
      `user ${requesterId} already has pending request ${pending.id} for ${app.label}`,
      undefined,
      { existingRequestId: pending.id },
    );
  }
  return { app, config: app.selfService, adminIds, access };
}

/** What a step's approvers see or set of the app user's attributes (HIDDEN ones are left out). */
function visibleAttributes(access: Record<string, 'HIDDEN' | 'READ' | 'WRITE'> | undefined): { attributes?: Record<string, 'READ' | 'WRITE'> } {
  const visible = Object.entries(access ?? {}).filter((entry): entry is [string, 'READ' | 'WRITE'] => entry[1] !== 'HIDDEN');
  return visible.length > 0 ? { attributes: Object.fromEntries(visible) } : {};
}

/** The app user attributes as the app's configuration stores them (a JSON column): the contract's shape. */
const declaredAttributesSchema = appSelfServiceConfig.shape.appUserAttributes.unwrap();

function declaredAttributes(stored: unknown, appId: string): { appUserAttributes?: { name: string; required?: boolean }[] } {
  const declared = parseStored(declaredAttributesSchema, stored ?? [], `the app user attributes of app ${appId}`);
  return declared.length > 0 ? { appUserAttributes: declared } : {};
}

/** The app's time-bound access as stored (a JSON column; SQL NULL: grants do not end). */
function timeBoundAccessOf(stored: unknown, appId: string): TimeBoundAccess | null {
  if (stored === null || stored === undefined) return null;
  return parseStored(timeBoundAccessSchema, stored, `the time-bound access of app ${appId}`);
}

/** The time-bound access as the app's configuration stores it (a JSON column): the contract's shape. */
const timeBoundAccessSchema = appSelfServiceConfig.shape.timeBoundAccess.unwrap();

/** An extension needs the grant it extends: the same requester's and app's, approved, still on the dashboard and not ended. */
async function checkExtension(db: Database, wanted: { orgId: string; appId: string; requesterId: string; extendsRequestId: string; label: string }): Promise<void> {
  const [grant, assignment] = await Promise.all([
    db.appRequest.findUnique({ where: { id: wanted.extendsRequestId }, select: { orgId: true, appId: true, requesterId: true, status: true, accessEndsAt: true } }),
    db.appAssignment.findUnique({ where: { userId_appId: { userId: wanted.requesterId, appId: wanted.appId } }, select: { requestId: true } }),
  ]);
  const active =
    grant !== null &&
    grant.orgId === wanted.orgId &&
    grant.appId === wanted.appId &&
    grant.requesterId === wanted.requesterId &&
    grant.status === 'APPROVED' &&
    grant.accessEndsAt !== null &&
    grant.accessEndsAt.getTime() > Date.now() &&
    assignment?.requestId === wanted.extendsRequestId;
  if (!active) {
    throw new CommandRejection(
      'NO_ACTIVE_GRANT',
      `${wanted.extendsRequestId} is not a time-bound grant of ${wanted.label} to user ${wanted.requesterId} that is still active; only such a grant can be extended`,
    );
  }
}

/** A configured timeout and reminder as the plan holds them: calendar days, or business days. */
function stepTimingOf(configured: { timeout: { days?: number; businessDays?: number }; reminder?: { daysBefore: number } }): StepTiming {
  const { days, businessDays } = configured.timeout;
  return {
    timeoutDays: businessDays ?? days ?? 0,
    ...(businessDays !== undefined ? { businessDays: true } : {}),
    ...(configured.reminder ? { reminderDaysBefore: configured.reminder.daysBefore } : {}),
  };
}

/** The org's business calendar, for a plan with a step (or escalation) counted in business days. */
async function calendarFor(db: Database, orgId: string, steps: readonly StepPlan[]): Promise<{ calendar?: BusinessCalendar }> {
  if (!steps.some((step) => step.businessDays || step.escalation?.businessDays)) return {};
  const settings = await db.orgSettings.findUnique({ where: { orgId }, select: { businessCalendar: true } });
  const stored = settings?.businessCalendar ? parseStored(businessCalendar, settings.businessCalendar, `the business calendar of org ${orgId}`) : null;
  return { calendar: stored ?? DEFAULT_BUSINESS_CALENDAR };
}

/** The approval plan: each step's approvers as the directory has them now, the admins, the notifications. */
async function planOf(db: Database, command: AppRequestedCommand, requestId: string): Promise<RequestPlan> {
  const { orgId, appId, comment } = command.data;
  const { requesterId, requestedById } = requesterOf(command.data);
  const { app, config, adminIds, access } = await checkSubmission(db, command);
  const storedSteps = config.approvalRequired ? parseStored(storedStepsSchema, config.approverSteps, `the approver steps of app ${appId}`) : [];
  const steps: StepPlan[] = [];
  for (const [index, step] of storedSteps.entries()) {
    // With delegation while away: an approver who is away now is replaced by their delegate.
    const { approverIds, delegatedFrom } = await resolveStepApprovers(db, orgId, step, requesterId, config.fallbackApproverIds);
    if (approverIds.length === 0) {
      throw new CommandRejection('NO_APPROVER_AVAILABLE', `approver step ${index + 1} of ${app.label} has no active approver, and no fallback or super admin is left`);
    }
    steps.push({
      number: index + 1,
      type: step.type,
      sourceId: step.id,
      approverIds,
      ...stepTimingOf(step),
      ...(step.escalation ? { escalation: { approvers: step.escalation.approvers, ...stepTimingOf(step.escalation) } } : {}),
      ...visibleAttributes(step.attributes),
      ...(delegatedFrom ? { delegatedFrom } : {}),
    });
  }
  return {
    requestId,
    orgId,
    appId,
    appLabel: app.label,
    requesterId,
    ...(requestedById ? { requestedById } : {}),
    ...(comment ? { comment } : {}),
    // As configured now: a later change of the app's configuration applies to later requests.
    ...(config.justificationRequired ? { justificationRequired: true } : {}),
    ...(config.denyCommentRequired ? { denyCommentRequired: true } : {}),
    approvalRequired: config.approvalRequired,
    steps,
    adminIds,
    notifications: parseStored(notificationsSchema, config.notifications ?? {}, `the notifications of app ${appId}`),
    ...(await calendarFor(db, orgId, steps)),
    ...(access ? { access } : {}),
    ...declaredAttributes(config.appUserAttributes, appId),
    ...(command.data.extendsRequestId ? { extendsRequestId: command.data.extendsRequestId } : {}),
  };
}

/** Everything of an accepted submission, or nothing when the ledger already has the command. */
const WRITE_SUBMISSION = `
WITH input AS (SELECT $1::jsonb AS c),
ledger AS (
  INSERT INTO "ProcessedCommand" ("commandId", "commandType", "orgId", "outcome", "result")
  SELECT c->'ledger'->>'commandId', c->'ledger'->>'commandType', c->'ledger'->>'orgId', (c->'ledger'->>'outcome')::"CommandOutcome", c->'ledger'->'result'
  FROM input
  ON CONFLICT ("commandId") DO NOTHING
  RETURNING 1
),
request AS (
  INSERT INTO "AppRequest" ("id", "orgId", "appId", "requesterId", "requestedById", "comment", "status", "commandId", "workflowId", "plan", "currentStep", "currentApproverIds", "createdAt", "updatedAt")
  SELECT r->>'id', r->>'orgId', r->>'appId', r->>'requesterId', r->>'requestedById', r->>'comment', 'PENDING', r->>'commandId', r->>'workflowId', r->'plan', (r->>'currentStep')::int,
    ARRAY(SELECT jsonb_array_elements_text(r->'currentApproverIds')), (r->>'at')::timestamp(3), (r->>'at')::timestamp(3)
  FROM (SELECT c->'request' AS r FROM input) AS submitted
  WHERE EXISTS (SELECT 1 FROM ledger)
  RETURNING 1
),
history AS (
  INSERT INTO "AppRequestEvent" ("id", "requestId", "sequence", "name", "actorId", "comment", "at")
  SELECT r->>'id' || ':1', r->>'id', 1, 'app.access_request.request', COALESCE(r->>'requestedById', r->>'requesterId'), r->>'comment', (r->>'at')::timestamp(3)
  FROM (SELECT c->'request' AS r FROM input) AS submitted
  WHERE EXISTS (SELECT 1 FROM ledger)
  RETURNING 1
),
outbox AS (
  INSERT INTO "OutboxEvent" ("id", "topic", "type", "key", "data", "time", "traceparent")
  SELECT e->>'id', e->>'topic', e->>'type', e->>'key', e->'data', (e->>'time')::timestamp(3), e->>'traceparent'
  FROM input, jsonb_array_elements(input.c->'events') WITH ORDINALITY AS t(e, n)
  WHERE EXISTS (SELECT 1 FROM ledger)
  ORDER BY n
  RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM ledger) AS "written"`;

/** A recorded submission (a retry, a rejection): its result, with the stored plan when it was accepted. */
async function recordedOutcome(db: Database, result: CommandResult, requestId: string): Promise<SubmitOutcome> {
  if (result.outcome === 'REJECTED') return { accepted: false, code: result.code ?? 'REJECTED', message: result.message ?? '', eventIds: result.eventIds };
  const request = await db.appRequest.findUniqueOrThrow({ where: { id: requestId } });
  return { accepted: true, plan: parseStored(requestPlanSchema, request.plan, `the plan of request ${requestId}`), eventIds: result.eventIds };
}

/**
 * A refused submission is audited as every refused command is: the caller as actor (the manager, for a
 * request on behalf of a report), the app as subject.
 */
function submissionAudit(command: AppRequestedCommand): AuditDraft {
  const { orgId, userId, appId } = command.data;
  const { requesterId, requestedById } = requesterOf(command.data);
  return { orgId, actorId: userId, action: 'app-request.request', subject: appId, after: { requesterId, ...(requestedById ? { requestedById } : {}) } };
}

/** Validates and records the request; the command's result (accepted or rejected) is written with it. */
export async function submitRequest(db: Database, command: AppRequestedCommand): Promise<SubmitOutcome> {
  const requestId = requestIdFor(command.commandId);
  const recorded = await findRecorded(db, command.commandId);
  if (recorded) return recordedOutcome(db, recorded, requestId);
  let plan: RequestPlan;
  try {
    plan = await planOf(db, command, requestId);
  } catch (error) {
    if (!(error instanceof CommandRejection)) throw error;
    const rejected = await recordRejected(db, commandRef(command), error.code, error.message, error.audit ?? submissionAudit(command), error.details);
    return recordedOutcome(db, rejected, requestId);
  }
  const workflowId = appRequestWorkflowId(requestId);
  const at = new Date().toISOString();
  const accepted = acceptedWrite(commandRef(command), {
    details: {
      requestId,
      workflowId,
      approvalRequired: plan.approvalRequired,
      ...(plan.requestedById ? { requesterId: plan.requesterId, requestedById: plan.requestedById } : {}),
    },
    events: [
      {
        name: 'access-request',
        ...outboundEvents.accessRequest('app.access_request.request', {
          orgId: plan.orgId,
          requestId,
          appId: plan.appId,
          requesterId: plan.requesterId,
          actorId: plan.requestedById ?? plan.requesterId,
          requestedById: plan.requestedById,
          comment: plan.comment,
          at,
        }),
      },
    ],
  });
  // The first step waits from the start: re-routing and operators find its approvers at once.
  const first = plan.approvalRequired ? plan.steps[0] : undefined;
  const input = {
    ledger: accepted.row,
    request: {
      id: requestId,
      orgId: plan.orgId,
      appId: plan.appId,
      requesterId: plan.requesterId,
      requestedById: plan.requestedById ?? null,
      comment: plan.comment ?? null,
      commandId: command.commandId,
      workflowId,
      plan,
      currentStep: first ? 1 : null,
      currentApproverIds: first?.approverIds ?? [],
      at,
    },
    events: outboxRowsOf(accepted.events),
  };
  const [row] = await db.$queryRawUnsafe<{ written: boolean }[]>(WRITE_SUBMISSION, JSON.stringify(input));
  if (row?.written) return { accepted: true, plan, eventIds: accepted.result.eventIds };
  // Recorded meanwhile (a retry that overlapped this attempt): its result stands.
  const meanwhile = await findRecorded(db, command.commandId);
  if (!meanwhile) throw new Error(`submission ${command.commandId} was neither written nor found recorded`);
  return recordedOutcome(db, meanwhile, requestId);
}
