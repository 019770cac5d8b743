import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { approverStep, type Command } from '../events/inbound';
import { requestIdFor } from '../rules/identifiers';
import { outboundEvents, type OutboundEvent } from '../events/outbound';
import type { ApproversNotice, OutcomeNotice, RequestPlan, ReviewVerdict, StepPlan, SubmitOutcome, Transition } from '../rules/app-request';
import { appRequestWorkflowId, MAX_COMMENT_LENGTH, notificationsSchema, outcomeRecipients, requestPlanSchema } from '../rules/app-request';
import { requestAdminsOf, requireAdmin } from './admin-authorization';
import { requestsAffectedBy } from './affected-requests';
import { approverRequestMail, outcomeMail, type Person } from './app-request-mails';
import { recordAccepted, recordCommand } from './command-ledger';
import { CommandRejection, type CommandRef, type CommandResult } from '../rules/commands';
import type { Database, Transaction } from './database';
import type { Mailer } from './mailer';
import { enqueueEvents } from './outbox';
import { parseStored } from './stored';
import { Prisma } from '../prisma/client/client';

/**
 * Side effects of an org-managed app request: submission checks, the persisted state and history,
 * the dashboard assignment, the emails. Every write is idempotent (deterministic ids and unique keys),
 * because Temporal retries activities.
 */

type AppRequestedCommand = Extract<Command, { type: 'selfservice.app.requested.v1' }>;

/** The approver steps as the app's configuration stores them (a JSON column). */
const storedStepsSchema = z.array(approverStep);

/**
 * Reads a JSON column through its schema. Data that does not fit is a permanent failure (a TypeError,
 * see failures.ts): retrying cannot mend it.
 */

export type { ReviewVerdict, Transition };

/** Active approvers of a step, never the requester; the fallback approvers (admins by default) when none is left. */
export async function resolveApprovers(
  tx: Transaction | Database,
  orgId: string,
  step: { type: 'USER' | 'GROUP'; id: string },
  requesterId: string,
  fallbackApproverIds: string[],
): Promise<string[]> {
  const candidates =
    step.type === 'USER'
      ? [step.id]
      : (await tx.groupMember.findMany({ where: { groupId: step.id }, select: { userId: true } })).map((m) => m.userId);
  const active = await tx.user.findMany({
    where: { id: { in: candidates }, orgId, status: 'ACTIVE', NOT: { id: requesterId } },
    select: { id: true },
    orderBy: { id: 'asc' },
  });
  if (active.length > 0) return active.map((user) => user.id);

  const fallback = await tx.user.findMany({
    where: { id: { in: fallbackApproverIds }, orgId, status: 'ACTIVE', NOT: { id: requesterId } },
    select: { id: true },
    orderBy: { id: 'asc' },
  });
  if (fallback.length > 0) return fallback.map((user) => user.id);
  const admins = await tx.user.findMany({
    where: { orgId, status: 'ACTIVE', adminRoles: { has: 'SUPER_ADMIN' }, NOT: { id: requesterId } },
    select: { id: true },
    orderBy: { id: 'asc' },
  });
  return admins.map((user) => user.id);
}

async function validateSubmission(tx: Transaction, command: AppRequestedCommand) {
  const { orgId, userId, appId, comment } = command.data;
  const settings = await tx.orgSettings.findUnique({ where: { orgId } });
  if (!settings) throw new CommandRejection('ORG_NOT_FOUND', `org ${orgId} is unknown`);
  if (!settings.allowOrgManagedApps) {
    throw new CommandRejection('ORG_MANAGED_APPS_DISABLED', `org ${orgId} does not allow users to add org-managed app integrations`);
  }
  const user = await tx.user.findUnique({ where: { id: userId } });
  if (!user || user.orgId !== orgId) throw new CommandRejection('USER_NOT_FOUND', `user ${userId} is not a user of org ${orgId}`);
  if (user.status !== 'ACTIVE') throw new CommandRejection('USER_NOT_ACTIVE', `user ${userId} is ${user.status} and cannot request apps`);
  const app = await tx.orgApp.findUnique({ where: { id: appId }, include: { selfService: true } });
  if (!app || app.orgId !== orgId) throw new CommandRejection('APP_NOT_FOUND', `app ${appId} is not an app integration of org ${orgId}`);
  if (app.status !== 'ACTIVE') throw new CommandRejection('APP_INACTIVE', `app ${appId} (${app.label}) is inactive`);
  if (!app.selfService?.requestsEnabled) {
    throw new CommandRejection('APP_NOT_REQUESTABLE', `app ${appId} (${app.label}) does not allow Self Service requests`);
  }
  if ((comment ?? '').length > MAX_COMMENT_LENGTH) {
    throw new CommandRejection('COMMENT_TOO_LONG', `the comment has ${comment?.length} characters; at most ${MAX_COMMENT_LENGTH} are allowed`);
  }
  const assigned = await tx.appAssignment.findUnique({ where: { userId_appId: { userId, appId } } });
  if (assigned) throw new CommandRejection('ALREADY_ASSIGNED', `user ${userId} already has ${app.label} on their dashboard`);
  const pending = await tx.appRequest.findFirst({ where: { requesterId: userId, appId, status: 'PENDING' } });
  if (pending) {
    throw new CommandRejection(
      'DUPLICATE_PENDING_REQUEST',
      `user ${userId} already has pending request ${pending.id} for ${app.label}`,
      undefined,
      { existingRequestId: pending.id },
    );
  }
  return { app, config: app.selfService, user };
}

async function buildPlan(tx: Transaction, command: AppRequestedCommand, requestId: string): Promise<RequestPlan> {
  const { orgId, userId, appId, comment } = command.data;
  const { app, config } = await validateSubmission(tx, command);
  const storedSteps = config.approvalRequired ? parseStored(storedStepsSchema, config.approverSteps, `the approver steps of app ${appId}`) : [];
  const steps: StepPlan[] = [];
  for (const [index, step] of storedSteps.entries()) {
    const approverIds = await resolveApprovers(tx, orgId, step, userId, config.fallbackApproverIds);
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
  const adminIds = await requestAdminsOf(tx, { orgId, appId, requesterId: userId });
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

function transitionEventIds(transition: Pick<Transition, 'requestId' | 'sequence' | 'assign'>): string[] {
  const base = `${transition.requestId}:${transition.sequence}`;
  return transition.assign ? [base, `${base}:dashboard`] : [base];
}

async function personOf(db: Database, userId: string): Promise<Person | null> {
  const user = await db.user.findUnique({ where: { id: userId } });
  return user ? { id: user.id, email: user.email, displayName: user.displayName } : null;
}

async function planOf(db: Database, requestId: string): Promise<RequestPlan> {
  const request = await db.appRequest.findUniqueOrThrow({ where: { id: requestId } });
  return parseStored(requestPlanSchema, request.plan, `the plan of request ${requestId}`);
}

/** Writes one transition unless it is already recorded: the history row, the request's state, the assignment, the outbox rows. */
async function writeTransition(tx: Transaction, transition: Transition): Promise<void> {
  const eventIds = transitionEventIds(transition);
  const id = `${transition.requestId}:${transition.sequence}`;
  if (await tx.appRequestEvent.findUnique({ where: { id } })) return;
  const request = await tx.appRequest.findUniqueOrThrow({ where: { id: transition.requestId } });
  const at = new Date(transition.at);
  await tx.appRequestEvent.create({
    data: {
      id,
      requestId: transition.requestId,
      sequence: transition.sequence,
      name: transition.name,
      actorId: transition.actorId ?? null,
      step: transition.step ?? null,
      comment: transition.comment ?? null,
      data: transition.reason ? { reason: transition.reason } : {},
      at,
    },
  });
  const closing = transition.status !== undefined && transition.status !== 'PENDING';
  await tx.appRequest.update({
    where: { id: transition.requestId },
    data: {
      ...(transition.status ? { status: transition.status } : {}),
      ...(transition.currentStep !== undefined ? { currentStep: transition.currentStep } : {}),
      ...(transition.currentApproverIds ? { currentApproverIds: transition.currentApproverIds } : {}),
      ...(closing ? { closedAt: at, currentStep: null, currentApproverIds: [], closedReason: transition.reason ?? null } : {}),
    },
  });
  const common = { orgId: request.orgId, requestId: request.id, appId: request.appId, requesterId: request.requesterId };
  const time = at.toISOString();
  const events: OutboundEvent[] = [
    {
      id: eventIds[0]!,
      time,
      ...outboundEvents.accessRequest(transition.name, {
        ...common,
        actorId: transition.actorId,
        step: transition.step,
        comment: transition.comment,
        reason: transition.reason,
        at: transition.at,
      }),
    },
  ];
  if (transition.assign) {
    const existing = await tx.appAssignment.findUnique({ where: { userId_appId: { userId: request.requesterId, appId: request.appId } } });
    if (!existing) {
      await tx.appAssignment.create({ data: { orgId: request.orgId, userId: request.requesterId, appId: request.appId, requestId: request.id } });
    }
    events.push({ id: eventIds[1]!, time, ...outboundEvents.appAssigned({ orgId: request.orgId, userId: request.requesterId, appId: request.appId, requestId: request.id }) });
  }
  await enqueueEvents(tx, events);
}

async function setCurrentStep(db: Database, input: { requestId: string; step: number; approverIds: string[] }): Promise<void> {
  await db.appRequest.updateMany({
    where: { id: input.requestId, status: 'PENDING' },
    data: { currentStep: input.step, currentApproverIds: input.approverIds },
  });
}

/** Whether a pending request may go on as the org, app and directory are now, and who may decide its step. */
async function reviewRequest(db: Database, plan: RequestPlan, step: StepPlan | null): Promise<ReviewVerdict> {
  const settings = await db.orgSettings.findUnique({ where: { orgId: plan.orgId } });
  if (!settings?.allowOrgManagedApps) return { close: 'the org no longer allows users to add org-managed app integrations' };
  const app = await db.orgApp.findUnique({ where: { id: plan.appId }, include: { selfService: true } });
  if (!app || app.status !== 'ACTIVE') return { close: `the app ${plan.appLabel} is no longer active` };
  if (!app.selfService?.requestsEnabled) return { close: `requests for ${plan.appLabel} were disabled` };
  if (plan.approvalRequired && !app.selfService.approvalRequired) return { close: `approval for ${plan.appLabel} is no longer required; request the app again to get it at once` };
  const requester = await db.user.findUnique({ where: { id: plan.requesterId } });
  if (requester?.status !== 'ACTIVE') return { close: `the requester is ${requester?.status ?? 'gone'}` };
  const adminIds = await requestAdminsOf(db, { orgId: plan.orgId, appId: plan.appId, requesterId: plan.requesterId });
  if (!step) return { approverIds: null, adminIds };
  const approverIds = await resolveApprovers(db, plan.orgId, { type: step.type, id: step.sourceId }, plan.requesterId, app.selfService.fallbackApproverIds);
  if (approverIds.length === 0) return { close: `nobody is left who could approve step ${step.number}` };
  return { approverIds, adminIds };
}

export function createAppRequestActivities({ db, mailer }: { db: Database; mailer: Mailer }) {
  return {
    /** Validates and records the request; the command's result (accepted or rejected) goes in the same transaction. */
    async submitAppRequest(command: AppRequestedCommand): Promise<SubmitOutcome> {
      const requestId = requestIdFor(command.commandId);
      const workflowId = appRequestWorkflowId(requestId);
      let plan: RequestPlan | null = null;
      const result = await recordCommand(db, command, async (tx) => {
        plan = await buildPlan(tx, command, requestId);
        const first = plan.approvalRequired ? plan.steps[0] : undefined;
        const at = new Date();
        await tx.appRequest.create({
          data: {
            id: requestId,
            orgId: plan.orgId,
            appId: plan.appId,
            requesterId: plan.requesterId,
            comment: plan.comment ?? null,
            status: 'PENDING',
            commandId: command.commandId,
            workflowId,
            plan: plan as unknown as Prisma.InputJsonValue,
            // The first step waits from the start: re-routing and operators find its approvers at once.
            ...(first ? { currentStep: 1, currentApproverIds: first.approverIds } : {}),
          },
        });
        await tx.appRequestEvent.create({
          data: { id: `${requestId}:1`, requestId, sequence: 1, name: 'app.access_request.request', actorId: plan.requesterId, comment: plan.comment ?? null, at },
        });
        return {
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
                at: at.toISOString(),
              }),
            },
          ],
        };
      });
      if (result.outcome === 'REJECTED') {
        return { accepted: false, code: result.code ?? 'REJECTED', message: result.message ?? '', eventIds: result.eventIds };
      }
      return { accepted: true, plan: plan ?? (await planOf(db, requestId)), eventIds: result.eventIds };
    },

    /** Persists one step of the request's life (histories from before recordRequestChange). */
    async recordRequestTransition(transition: Transition): Promise<string[]> {
      await db.$transaction((tx) => writeTransition(tx, transition));
      return transitionEventIds(transition);
    },

    /**
     * Records what one decision, action, timer or review did: its transitions in one transaction, then
     * the accepted result of the Kafka command that caused it. Both writes are idempotent, so a retry
     * completes whichever is missing.
     */
    async recordRequestChange(input: { transitions: Transition[]; accepted?: { command: CommandRef; details: Record<string, unknown> } }): Promise<void> {
      if (input.transitions.length > 0) {
        await db.$transaction(async (tx) => {
          for (const transition of input.transitions) await writeTransition(tx, transition);
        });
      }
      if (input.accepted) await recordAccepted(db, input.accepted.command, input.accepted.details);
    },

    /** The step the request waits on, and who may decide it (operators and re-routing read it). */
    async setCurrentStep(input: { requestId: string; step: number; approverIds: string[] }): Promise<void> {
      await setCurrentStep(db, input);
    },

    /**
     * A later step begins: its approvers and the request's admins as the directory has them now, and
     * the step recorded as current; or why the request must close instead.
     */
    async startRequestStep(input: { plan: RequestPlan; step: StepPlan }): Promise<ReviewVerdict> {
      const verdict = await reviewRequest(db, input.plan, input.step);
      if ('approverIds' in verdict) {
        await setCurrentStep(db, { requestId: input.plan.requestId, step: input.step.number, approverIds: verdict.approverIds ?? input.step.approverIds });
      }
      return verdict;
    },

    /** Emails the approvers of a step, once per notice and approver. */
    async notifyApprovers(input: ApproversNotice): Promise<number> {
      const plan = input.plan ?? (await planOf(db, input.requestId));
      const step = plan.steps.find((candidate) => candidate.number === input.step);
      const requester = await personOf(db, plan.requesterId);
      if (!step || !requester) return 0;
      let sent = 0;
      for (const approverId of input.approverIds) {
        const approver = await personOf(db, approverId);
        if (!approver) continue;
        const mail = approverRequestMail(plan, step, requester, input.deadline, input.notice === 'reminder' ? 'reminder' : 'request');
        const outcome = await mailer.send({ dedupeKey: `${input.requestId}:step-${input.step}:${input.notice}:${approverId}`, to: approver.email, ...mail });
        if (outcome.sentNow) sent += 1;
      }
      return sent;
    },

    /** Tells the people the app's notification choices name (the requester by default) how the request ended. */
    async notifyOutcome(input: OutcomeNotice): Promise<number> {
      const plan = input.plan ?? (await planOf(db, input.requestId));
      const requester = await personOf(db, plan.requesterId);
      if (!requester) return 0;
      const choice =
        input.outcome === 'APPROVED' ? plan.notifications?.onApprove : input.outcome === 'DENIED' ? plan.notifications?.onDeny : input.outcome === 'EXPIRED' ? plan.notifications?.onExpire : undefined;
      const recipients = outcomeRecipients(choice);
      const addresses = new Set<string>();
      // Deletion and cancellation are always told to the requester (Okta tells no one; we do).
      if (recipients.requester || input.outcome === 'DELETED' || input.outcome === 'CANCELLED') addresses.add(requester.email);
      if (recipients.approvers) {
        for (const approverId of input.approverIds) {
          const approver = await personOf(db, approverId);
          if (approver) addresses.add(approver.email);
        }
      }
      for (const other of recipients.others) addresses.add(other.toLowerCase());
      const actor = input.actorId ? await personOf(db, input.actorId) : null;
      const mail = outcomeMail(plan, requester, input.outcome, {
        comment: input.comment,
        reason: input.reason,
        actorName: actor ? (actor.displayName ?? actor.email) : undefined,
      });
      let sent = 0;
      for (const address of addresses) {
        const outcome = await mailer.send({ dedupeKey: `${input.requestId}:outcome:${address}`, to: address, ...mail });
        if (outcome.sentNow) sent += 1;
      }
      return sent;
    },

    /**
     * After a directory or configuration change: should the pending request close (and why), or who
     * are the current step's approvers now? Given the plan, nothing of the request is read back.
     */
    async reviewPendingRequest(input: { requestId: string; step: StepPlan | null; plan?: RequestPlan }): Promise<ReviewVerdict> {
      if (input.plan) return reviewRequest(db, input.plan, input.step);
      const request = await db.appRequest.findUniqueOrThrow({ where: { id: input.requestId } });
      if (request.status !== 'PENDING') return { approverIds: null };
      return reviewRequest(db, parseStored(requestPlanSchema, request.plan, `the plan of request ${input.requestId}`), input.step);
    },

    /** Admin actions on a request need a super admin or an app admin of the request's org. */
    async authorizeRequestAdmin(input: { orgId: string; actorId: string; requestId: string; action: string }): Promise<void> {
      try {
        await db.$transaction((tx) =>
          requireAdmin(tx, { orgId: input.orgId, actorId: input.actorId, roles: ['SUPER_ADMIN', 'APP_ADMIN'], action: `app-request.${input.action.toLowerCase()}`, subject: input.requestId }),
        );
      } catch (error) {
        if (error instanceof CommandRejection) {
          await db.auditEntry.create({
            data: { orgId: input.orgId, actorId: input.actorId, action: `app-request.${input.action.toLowerCase()}`, subject: input.requestId, outcome: 'REJECTED', code: error.code, message: error.message },
          });
          throw ApplicationFailure.create({ type: error.code, message: error.message, nonRetryable: true });
        }
        throw error;
      }
      await db.auditEntry.create({
        data: { orgId: input.orgId, actorId: input.actorId, action: `app-request.${input.action.toLowerCase()}`, subject: input.requestId, outcome: 'ACCEPTED' },
      });
    },

    /** The accepted result of a Kafka command (decision, cancel, admin action) that a request workflow carried out. */
    async recordRequestCommandAccepted(input: { command: CommandRef; details: Record<string, unknown> }): Promise<CommandResult> {
      return recordAccepted(db, input.command, input.details);
    },

    /** Pending requests that a directory or configuration change may affect (adminCommandWorkflow, before the ingress applied such commands itself). */
    pendingRequestsAffectedBy: (command: Command): Promise<string[]> => requestsAffectedBy(db, command),
  };
}
