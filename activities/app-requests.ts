import { ApplicationFailure } from '@temporalio/common';
import type { Command } from '../events/inbound';
import type { AccessNotice, ApproversNotice, OutcomeNotice, RequestPlan, ReviewVerdict, StepPlan, SubmitOutcome, Transition } from '../rules/app-request';
import { closingReason, outcomeRecipients, reviewSourcesOf, stepVerdict } from '../rules/app-request';
import { requestPlanSchema } from '../rules/request-plan';
import { requestAdminsOf, requireAdmin } from './admin-authorization';
import { requestsAffectedBy } from './affected-requests';
import { accessMail, approverMailKind, approverRequestMail, outcomeMail, requestedForYouMail, type Person } from './app-request-mails';
import { recordAccepted } from './command-ledger';
import { CommandRejection, type CommandRef, type CommandResult } from '../rules/commands';
import type { Database } from './database';
import type { Mailer } from './mailer';
import { resolveStepApprovers } from './approvers';
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

/**
 * Whether a pending request may go on as the org, app and directory are now, and who may decide its
 * step (an escalated step: its approvers and its escalation approvers), with the delegations in force
 * at `at` (the request's clock: its workflow's time; now when not given).
 */
async function reviewRequest(db: Database, plan: RequestPlan, step: StepPlan | null, escalated = false, at = Date.now()): Promise<ReviewVerdict> {
  // The rules are pure (rules/app-request.ts): a settings preview judges pending requests by them too.
  const settings = await db.orgSettings.findUnique({ where: { orgId: plan.orgId } });
  const app = await db.orgApp.findUnique({ where: { id: plan.appId }, include: { selfService: true } });
  const requester = await db.user.findUnique({ where: { id: plan.requesterId } });
  const close = closingReason(plan, { allowOrgManagedApps: settings?.allowOrgManagedApps ?? false, app, requesterStatus: requester?.status ?? null });
  if (close) return { close };
  const adminIds = await requestAdminsOf(db, { orgId: plan.orgId, appId: plan.appId, requesterId: plan.requesterId });
  if (!step) return stepVerdict(null, null, adminIds);
  const fallback = app?.selfService?.fallbackApproverIds ?? [];
  const approverIds: string[] = [];
  const delegatedFrom: Record<string, string> = {};
  for (const sources of reviewSourcesOf(step, escalated)) {
    const resolved = await resolveStepApprovers(db, plan.orgId, sources, plan.requesterId, fallback, at);
    for (const id of resolved.approverIds) if (!approverIds.includes(id)) approverIds.push(id);
    for (const [delegateId, awayId] of Object.entries(resolved.delegatedFrom ?? {})) delegatedFrom[delegateId] ??= awayId;
  }

  const verdict = stepVerdict(step, approverIds, adminIds);
  return 'approverIds' in verdict && Object.keys(delegatedFrom).length > 0 ? { ...verdict, delegatedFrom } : verdict;
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
    async startRequestStep(input: { plan: RequestPlan; step: StepPlan; at?: number }): Promise<ReviewVerdict> {
      const verdict = await reviewRequest(db, input.plan, input.step, false, input.at);
      if ('approverIds' in verdict) {
        await setCurrentStep(db, { requestId: input.plan.requestId, step: input.step.number, approverIds: verdict.approverIds ?? input.step.approverIds });
      }
      return verdict;
    },

    /**
     * The step timed out and escalates: whether the request may still go on, and who may decide the
     * step now (its approvers and its escalation approvers, as the directory has them).
     */
    async escalateRequestStep(input: { plan: RequestPlan; step: StepPlan; at?: number }): Promise<ReviewVerdict> {
      return reviewRequest(db, input.plan, input.step, true, input.at);
    },

    /** Emails the approvers of a step, once per notice and approver. */
    async notifyApprovers(input: ApproversNotice): Promise<number> {
      const plan = input.plan ?? (await planOf(db, input.requestId));
      const step = plan.steps.find((candidate) => candidate.number === input.step);
      const requester = await personOf(db, plan.requesterId);
      if (!step || !requester) return 0;
      const askedBy = plan.requestedById ? await personOf(db, plan.requestedById) : null;
      let sent = 0;
      for (const approverId of input.approverIds) {
        const approver = await personOf(db, approverId);
        if (!approver) continue;
        // A delegate decides on behalf of the approver who is away: the mail names them.
        const awayId = input.delegatedFrom?.[approverId];
        const standsInFor = awayId ? await personOf(db, awayId) : null;
        const mail = approverRequestMail(plan, step, requester, input.deadline, approverMailKind(input.notice), askedBy, standsInFor, input.attributes);
        const outcome = await mailer.send({ dedupeKey: `${input.requestId}:step-${input.step}:${input.notice}:${approverId}`, to: approver.email, ...mail });
        if (outcome.sentNow) sent += 1;
      }
      return sent;
    },

    /**
     * Tells the requester of record that their manager asked for an app on their behalf (a request
     * that waits for approval; one granted at once is told by its outcome email). Once per request.
     */
    async notifyRequestedFor(input: { requestId: string; plan: RequestPlan }): Promise<number> {
      const { plan } = input;
      if (!plan.requestedById) return 0;
      const [requester, askedBy] = await Promise.all([personOf(db, plan.requesterId), personOf(db, plan.requestedById)]);
      if (!requester || !askedBy) return 0;
      const outcome = await mailer.send({ dedupeKey: `${input.requestId}:requested-for:${requester.id}`, to: requester.email, ...requestedForYouMail(plan, askedBy) });
      return outcome.sentNow ? 1 : 0;
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
      // The manager who asked on the requester's behalf hears of it whenever the requester does.
      const askedBy = plan.requestedById ? await personOf(db, plan.requestedById) : null;
      if (recipients.requester || input.outcome === 'DELETED' || input.outcome === 'CANCELLED') {
        addresses.add(requester.email);
        if (askedBy) addresses.add(askedBy.email);
      }
      if (recipients.approvers) {
        for (const approverId of input.approverIds) {
          const approver = await personOf(db, approverId);
          if (approver) addresses.add(approver.email);
        }
      }
      for (const other of recipients.others) addresses.add(other.toLowerCase());
      const actor = input.actorId ? await personOf(db, input.actorId) : null;
      const onBehalfOf = input.onBehalfOf ? await personOf(db, input.onBehalfOf) : null;
      const actorName = actor ? (actor.displayName ?? actor.email) : undefined;
      const mail = outcomeMail(plan, requester, input.outcome, {
        comment: input.comment,
        reason: input.reason,
        actorName: actorName && onBehalfOf ? `${actorName} on behalf of ${onBehalfOf.displayName ?? onBehalfOf.email}` : actorName,
        askedByName: askedBy ? (askedBy.displayName ?? askedBy.email) : undefined,
        accessEndsAt: input.accessEndsAt,
      });
      let sent = 0;
      for (const address of addresses) {
        const outcome = await mailer.send({ dedupeKey: `${input.requestId}:outcome:${address}`, to: address, ...mail });
        if (outcome.sentNow) sent += 1;
      }
      return sent;
    },

    /** Tells the user of a time-bound grant that it ends soon, has ended, or was revoked (once per notice). */
    async notifyAccess(input: AccessNotice): Promise<number> {
      const user = await personOf(db, input.plan.requesterId);
      if (!user) return 0;
      const mail = accessMail(input.plan, user, input.kind, input.endsAt, input.reason);
      const outcome = await mailer.send({ dedupeKey: `${input.requestId}:access-${input.kind}-${input.sequence}`, to: user.email, ...mail });
      return outcome.sentNow ? 1 : 0;
    },

    /**
     * After a directory or configuration change: should the pending request close (and why), or who
     * are the current step's approvers now? Given the plan, nothing of the request is read back.
     */
    async reviewPendingRequest(input: { requestId: string; step: StepPlan | null; plan?: RequestPlan; escalated?: boolean; at?: number }): Promise<ReviewVerdict> {
      if (input.plan) return reviewRequest(db, input.plan, input.step, input.escalated, input.at);
      const request = await db.appRequest.findUniqueOrThrow({ where: { id: input.requestId } });
      if (request.status !== 'PENDING') return { approverIds: null };
      return reviewRequest(db, parseStored(requestPlanSchema, request.plan, `the plan of request ${input.requestId}`), input.step, false, input.at);
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
