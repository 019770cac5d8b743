import { ApplicationFailure } from '@temporalio/common';
import type { Command } from '../events/inbound';
import type { ApproversNotice, OutcomeNotice, RequestPlan, ReviewVerdict, StepPlan, SubmitOutcome, Transition } from '../rules/app-request';
import { outcomeRecipients, requestPlanSchema } from '../rules/app-request';
import { requestAdminsOf, requireAdmin } from './admin-authorization';
import { requestsAffectedBy } from './affected-requests';
import { approverRequestMail, outcomeMail, type Person } from './app-request-mails';
import { recordAccepted } from './command-ledger';
import { CommandRejection, type CommandRef, type CommandResult } from '../rules/commands';
import type { Database } from './database';
import type { Mailer } from './mailer';
import { resolveApprovers } from './approvers';
import { transitionEventIds, writeRequestChange, type RequestChange } from './request-change';
import { submitRequest } from './request-submission';
import { parseStored } from './stored';

/**
 * Side effects of an org-managed app request: submission (request-submission.ts), the persisted state and history (request-change.ts),
 * the dashboard assignment, the emails. Every write is idempotent (deterministic ids and unique keys),
 * because Temporal retries activities.
 */

type AppRequestedCommand = Extract<Command, { type: 'selfservice.app.requested.v1' }>;

export type { ReviewVerdict, Transition };

async function personOf(db: Database, userId: string): Promise<Person | null> {
  const user = await db.user.findUnique({ where: { id: userId } });
  return user ? { id: user.id, email: user.email, displayName: user.displayName } : null;
}

async function planOf(db: Database, requestId: string): Promise<RequestPlan> {
  const request = await db.appRequest.findUniqueOrThrow({ where: { id: requestId } });
  return parseStored(requestPlanSchema, request.plan, `the plan of request ${requestId}`);
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
    /** Validates and records the request with its command's result (request-submission.ts). */
    submitAppRequest: (command: AppRequestedCommand): Promise<SubmitOutcome> => submitRequest(db, command),

    /** Persists one step of the request's life (histories from before recordRequestChange). */
    async recordRequestTransition(transition: Transition): Promise<string[]> {
      await writeRequestChange(db, { transitions: [transition] });
      return transitionEventIds(transition);
    },

    /**
     * Records what one decision, action, timer or review did: its transitions and the accepted result of
     * the Kafka command that caused it, in one statement (request-change.ts). A retry writes what is missing.
     */
    async recordRequestChange(change: RequestChange): Promise<void> {
      await writeRequestChange(db, change);
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
