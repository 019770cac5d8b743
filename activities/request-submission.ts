import { z } from 'zod';
import { approverStep, type Command } from '../events/inbound';
import { outboundEvents } from '../events/outbound';
import { appRequestWorkflowId, MAX_COMMENT_LENGTH, notificationsSchema, requestPlanSchema, type RequestPlan, type StepPlan, type SubmitOutcome } from '../rules/app-request';
import { CommandRejection, commandRef, type CommandResult } from '../rules/commands';
import { requestIdFor } from '../rules/identifiers';
import { requestAdminsOf } from './admin-authorization';
import { resolveApprovers } from './approvers';
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

/** The org, user and app as the rules need them; the reads go out together (no transaction: nothing is written yet). */
async function checkSubmission(db: Database, command: AppRequestedCommand) {
  const { orgId, userId, appId, comment } = command.data;
  const [settings, user, app, assigned, pending, adminIds] = await Promise.all([
    db.orgSettings.findUnique({ where: { orgId } }),
    db.user.findUnique({ where: { id: userId } }),
    db.orgApp.findUnique({ where: { id: appId }, include: { selfService: true } }),
    db.appAssignment.findUnique({ where: { userId_appId: { userId, appId } } }),
    db.appRequest.findFirst({ where: { requesterId: userId, appId, status: 'PENDING' } }),
    requestAdminsOf(db, { orgId, appId, requesterId: userId }),
  ]);
  if (!settings) throw new CommandRejection('ORG_NOT_FOUND', `org ${orgId} is unknown`);
  if (!settings.allowOrgManagedApps) {
    throw new CommandRejection('ORG_MANAGED_APPS_DISABLED', `org ${orgId} does not allow users to add org-managed app integrations`);
  }
  if (!user || user.orgId !== orgId) throw new CommandRejection('USER_NOT_FOUND', `user ${userId} is not a user of org ${orgId}`);
  if (user.status !== 'ACTIVE') throw new CommandRejection('USER_NOT_ACTIVE', `user ${userId} is ${user.status} and cannot request apps`);
  if (!app || app.orgId !== orgId) throw new CommandRejection('APP_NOT_FOUND', `app ${appId} is not an app integration of org ${orgId}`);
  if (app.status !== 'ACTIVE') throw new CommandRejection('APP_INACTIVE', `app ${appId} (${app.label}) is inactive`);
  if (!app.selfService?.requestsEnabled) {
    throw new CommandRejection('APP_NOT_REQUESTABLE', `app ${appId} (${app.label}) does not allow Self Service requests`);
  }
  if ((comment ?? '').length > MAX_COMMENT_LENGTH) {
    throw new CommandRejection('COMMENT_TOO_LONG', `the comment has ${comment?.length} characters; at most ${MAX_COMMENT_LENGTH} are allowed`);
  }
  if (assigned) throw new CommandRejection('ALREADY_ASSIGNED', `user ${userId} already has ${app.label} on their dashboard`);
  if (pending) {
    throw new CommandRejection(
      'DUPLICATE_PENDING_REQUEST',
      `user ${userId} already has pending request ${pending.id} for ${app.label}`,
      undefined,
      { existingRequestId: pending.id },
    );
  }
  return { app, config: app.selfService, adminIds };
}

/** The approval plan: each step's approvers as the directory has them now, the admins, the notifications. */
async function planOf(db: Database, command: AppRequestedCommand, requestId: string): Promise<RequestPlan> {
  const { orgId, userId, appId, comment } = command.data;
  const { app, config, adminIds } = await checkSubmission(db, command);
  const storedSteps = config.approvalRequired ? parseStored(storedStepsSchema, config.approverSteps, `the approver steps of app ${appId}`) : [];
  const steps: StepPlan[] = [];
  for (const [index, step] of storedSteps.entries()) {
    const approverIds = await resolveApprovers(db, orgId, step, userId, config.fallbackApproverIds);
    if (approverIds.length === 0) {
      throw new CommandRejection('NO_APPROVER_AVAILABLE', `approver step ${index + 1} of ${app.label} has no active approver, and no fallback or super admin is left`);
    }
    steps.push({
      number: index + 1,
      type: step.type,
      sourceId: step.id,
      approverIds,
      timeoutDays: step.timeout.days,
      ...(step.reminder ? { reminderDaysBefore: step.reminder.daysBefore } : {}),
    });
  }
  return {
    requestId,
    orgId,
    appId,
    appLabel: app.label,
    requesterId: userId,
    ...(comment ? { comment } : {}),
    approvalRequired: config.approvalRequired,
    steps,
    adminIds,
    notifications: parseStored(notificationsSchema, config.notifications ?? {}, `the notifications of app ${appId}`),
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
  INSERT INTO "AppRequest" ("id", "orgId", "appId", "requesterId", "comment", "status", "commandId", "workflowId", "plan", "currentStep", "currentApproverIds", "createdAt", "updatedAt")
  SELECT r->>'id', r->>'orgId', r->>'appId', r->>'requesterId', r->>'comment', 'PENDING', r->>'commandId', r->>'workflowId', r->'plan', (r->>'currentStep')::int,
    ARRAY(SELECT jsonb_array_elements_text(r->'currentApproverIds')), (r->>'at')::timestamp(3), (r->>'at')::timestamp(3)
  FROM (SELECT c->'request' AS r FROM input) AS submitted
  WHERE EXISTS (SELECT 1 FROM ledger)
  RETURNING 1
),
history AS (
  INSERT INTO "AppRequestEvent" ("id", "requestId", "sequence", "name", "actorId", "comment", "at")
  SELECT r->>'id' || ':1', r->>'id', 1, 'app.access_request.request', r->>'requesterId', r->>'comment', (r->>'at')::timestamp(3)
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
    const rejected = await recordRejected(db, commandRef(command), error.code, error.message, error.audit, error.details);
    return recordedOutcome(db, rejected, requestId);
  }
  const workflowId = appRequestWorkflowId(requestId);
  const at = new Date().toISOString();
  const accepted = acceptedWrite(commandRef(command), {
    details: { requestId, workflowId, approvalRequired: plan.approvalRequired },
    events: [
      {
        name: 'access-request',
        ...outboundEvents.accessRequest('app.access_request.request', {
          orgId: plan.orgId,
          requestId,
          appId: plan.appId,
          requesterId: plan.requesterId,
          actorId: plan.requesterId,
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
