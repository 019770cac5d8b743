import {
  ApplicationFailure,
  allHandlersFinished,
  condition,
  log,
  patched,
  proxyActivities,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { Command } from '../events/inbound';
import {
  adminActionProblem,
  APP_REQUEST_WORKFLOW_PREFIX,
  cancelProblem,
  DAY_MS,
  decisionProblem,
  type AdminActionInput,
  type CancelInput,
  type DecisionInput,
  type Problem,
  type RequestPlan,
  type RequestView,
  type StepPlan,
  type Transition,
  searchableApprovers,
} from '../rules/app-request';
import { administerUpdate, cancelUpdate, decideUpdate, reviewSignal, statusQuery } from './app-request-messages';
import { endingOnPermanentFailure } from './command-failure';
import {
  SelfServiceAppId,
  SelfServiceApproverIds,
  SelfServiceOrgId,
  SelfServiceRequesterId,
  SelfServiceStatus,
} from './search-attributes';
import { RECORDING } from './activity-options';

/**
 * FROZEN. The request workflow as it ran before the patch `app-request-v2` (see app-request.ts),
 * kept unchanged, with its own patches, only so that requests started before that patch replay and
 * finish. Do not change it; new behaviour goes into app-request.ts.
 */

const activities = proxyActivities<Activities>(RECORDING);

/** Emails ride out an SMTP outage for a day; a recipient the server refuses fails at once (non-retryable). */
const mail = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  scheduleToCloseTimeout: '1 day',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '5 minutes' },
});

/**
 * Since this patch, emails are sent beside the request, not in its path: an Update returns once its
 * decision is recorded, and a step's timer runs whatever happens to its emails. Histories recorded
 * before it replay the old order.
 */
const NOTHING_WAITS_ON_SMTP = 'nothing-waits-on-smtp';

/**
 * Since this patch, who may decide is the directory as it is at decision time: a later step's approvers
 * are resolved when the step starts, and after a directory change the request re-reads its approvers
 * and admins before it handles the decisions that are waiting, refusing those no longer allowed.
 */
const CURRENT_DIRECTORY = 'decide-against-current-directory';

type AppRequestedCommand = Extract<Command, { type: 'selfservice.app.requested.v1' }>;

type InboxItem =
  | { id: number; kind: 'decision'; step: number; input: DecisionInput }
  | { id: number; kind: 'cancel'; input: CancelInput }
  | { id: number; kind: 'admin'; input: AdminActionInput };

type StepEnd = 'approved' | 'closed';

function refuse(problem: Problem): never {
  throw ApplicationFailure.create({ type: problem.code, message: problem.message, nonRetryable: true });
}

/**
 * One org-managed app request, from submission to its end: auto-grant when the app needs no
 * approval, otherwise the approver steps in order (decisions, reminders, timeouts, re-routing), then
 * the grant or the closing state. Every change is persisted and announced by activities.
 */
export async function legacyAppRequest(command: AppRequestedCommand): Promise<RequestView> {
  return endingOnPermanentFailure(command, () => runAppRequest(command));
}

async function runAppRequest(command: AppRequestedCommand): Promise<RequestView> {
  const requestId = workflowInfo().workflowId.slice(APP_REQUEST_WORKFLOW_PREFIX.length);
  const view: RequestView = {
    requestId,
    status: 'SUBMITTED',
    plan: null,
    currentStep: null,
    currentApproverIds: [],
    stepDeadline: null,
    closedReason: null,
    timeline: [],
  };
  const decidedSteps = new Set<number>();
  const inbox: InboxItem[] = [];
  const answers = new Map<number, Problem | null>();
  const everyApprover = new Set<string>();
  let nextItemId = 1;
  let sequence = 1;
  let reviewRequested = false;
  let resends = 0;
  /** The group of the current step, if it is a group step: its id is searchable when its members are too many. */
  let stepGroup: string | undefined;
  const emails: Promise<void>[] = [];

  /** Sends emails beside the request (see NOTHING_WAITS_ON_SMTP); a failure is logged, the request goes on. */
  async function email(send: () => Promise<number>): Promise<void> {
    if (!patched(NOTHING_WAITS_ON_SMTP)) {
      await send();
      return;
    }
    emails.push(
      send().then(
        () => undefined,
        (error: unknown) => log.warn('email not sent', { requestId, error: error instanceof Error ? error.message : String(error) }),
      ),
    );
  }

  const snapshot = (): RequestView => ({ ...view, currentApproverIds: [...view.currentApproverIds], timeline: [...view.timeline] });

  async function waitForAnswer(item: InboxItem): Promise<RequestView> {
    inbox.push(item);
    await condition(() => answers.has(item.id));
    const problem = answers.get(item.id);
    if (problem) refuse(problem);
    return snapshot();
  }

  setHandler(statusQuery, snapshot);
  setHandler(reviewSignal, () => {
    reviewRequested = true;
  });
  setHandler(
    decideUpdate,
    (input) => {
      const step = view.currentStep ?? 0;
      decidedSteps.add(step);
      return waitForAnswer({ id: nextItemId++, kind: 'decision', step, input });
    },
    {
      validator: (input) => {
        const problem = decisionProblem(view, decidedSteps, input);
        if (problem) refuse(problem);
      },
    },
  );
  setHandler(cancelUpdate, (input) => waitForAnswer({ id: nextItemId++, kind: 'cancel', input }), {
    validator: (input) => {
      const problem = cancelProblem(view, input);
      if (problem) refuse(problem);
    },
  });
  setHandler(
    administerUpdate,
    async (input) => {
      const plan = view.plan;
      if (!plan) refuse({ code: 'REQUEST_NOT_PENDING', message: `request ${requestId} is ${view.status}` });
      await activities.authorizeRequestAdmin({ orgId: plan.orgId, actorId: input.actorId, requestId, action: input.action });
      const problem = adminActionProblem(view, input);
      if (problem) refuse(problem);
      return waitForAnswer({ id: nextItemId++, kind: 'admin', input });
    },
    {
      validator: (input) => {
        const problem = adminActionProblem(view, input);
        if (problem) refuse(problem);
      },
    },
  );

  function publishState(): void {
    upsertSearchAttributes([
      { key: SelfServiceStatus, value: view.status },
      { key: SelfServiceApproverIds, value: searchableApprovers(view.currentApproverIds, stepGroup) },
    ]);
  }

  async function record(transition: Omit<Transition, 'requestId' | 'sequence' | 'at'>): Promise<void> {
    sequence += 1;
    const at = new Date().toISOString();
    const eventIds = await activities.recordRequestTransition({ requestId, sequence, at, ...transition });
    await activities.publishEvents(eventIds);
    view.timeline.push({ sequence, name: transition.name, at, actorId: transition.actorId, step: transition.step, comment: transition.comment });
  }

  async function acknowledge(input: { commandId?: string }, type: string, details: Record<string, unknown>): Promise<void> {
    if (!input.commandId || !view.plan) return;
    const result = await activities.recordRequestCommandAccepted({
      command: { commandId: input.commandId, type, orgId: view.plan.orgId },
      details: { requestId, workflowId: workflowInfo().workflowId, ...details },
    });
    await activities.publishEvents(result.eventIds);
  }

  async function finish(
    status: 'APPROVED' | 'DENIED' | 'EXPIRED' | 'CANCELLED' | 'DELETED',
    transition: Omit<Transition, 'requestId' | 'sequence' | 'at' | 'status'>,
  ): Promise<void> {
    view.status = status;
    view.closedReason = transition.reason ?? null;
    view.currentStep = null;
    view.currentApproverIds = [];
    view.stepDeadline = null;
    await record({ ...transition, status });
    publishState();
    if (status !== 'CANCELLED') {
      await email(() => mail.notifyOutcome({
        requestId,
        outcome: status,
        comment: transition.comment,
        reason: transition.reason,
        actorId: transition.actorId,
        approverIds: [...everyApprover],
      }));
    }
  }

  const grant = (actorId?: string) => finish('APPROVED', { name: 'app.access_request.grant', actorId, assign: true });

  /** Handles one decision, cancellation or admin action; says whether the step or the request ended. */
  async function handle(item: InboxItem, step: StepPlan, isLastStep: boolean): Promise<StepEnd | null> {
    if (item.kind === 'decision') {
      const { approverId, decision, comment } = item.input;
      if (decision === 'APPROVE') {
        await record({ name: 'app.access_request.approver.approve', actorId: approverId, step: step.number, comment });
        await acknowledge(item.input, 'selfservice.app-request.decided.v1', { step: step.number, decision });
        if (isLastStep) await grant(approverId);
        return 'approved';
      }
      await record({ name: 'app.access_request.approver.deny', actorId: approverId, step: step.number, comment });
      await acknowledge(item.input, 'selfservice.app-request.decided.v1', { step: step.number, decision });
      await finish('DENIED', { name: 'app.access_request.deny', actorId: approverId, step: step.number, comment });
      return 'closed';
    }
    if (item.kind === 'cancel') {
      await finish('CANCELLED', { name: 'app.access_request.cancel', actorId: item.input.requesterId });
      await acknowledge(item.input, 'selfservice.app-request.cancelled.v1', { status: 'CANCELLED' });
      return 'closed';
    }
    const { actorId, action, reason } = item.input;
    if (action === 'RESEND') {
      resends += 1;
      const approverIds = [...view.currentApproverIds];
      await email(() => mail.notifyApprovers({ requestId, step: step.number, approverIds, notice: `resend-${resends}`, deadline: view.stepDeadline ?? '' }));
      await acknowledge(item.input, 'selfservice.app-request.admin-action.v1', { action });
      return null;
    }
    if (action === 'DELETE') {
      await finish('DELETED', { name: 'app.access_request.delete', actorId, reason: reason ?? `deleted by administrator ${actorId}` });
      await acknowledge(item.input, 'selfservice.app-request.admin-action.v1', { action, status: 'DELETED' });
      return 'closed';
    }
    await record({ name: 'app.access_request.override', actorId, step: step.number, comment: reason });
    await grant(actorId);
    await acknowledge(item.input, 'selfservice.app-request.admin-action.v1', { action, status: 'APPROVED' });
    return 'closed';
  }

  /** After a directory or configuration change: close the request, or re-route the step. */
  async function review(step: StepPlan): Promise<StepEnd | null> {
    const verdict = await activities.reviewPendingRequest({ requestId, step });
    if ('close' in verdict) {
      await finish('DELETED', { name: 'app.access_request.delete', reason: verdict.close });
      return 'closed';
    }
    if (verdict.adminIds && view.plan) view.plan = { ...view.plan, adminIds: verdict.adminIds };
    const approverIds = verdict.approverIds;
    if (!approverIds || sameMembers(approverIds, view.currentApproverIds)) return null;
    const added = approverIds.filter((id) => !view.currentApproverIds.includes(id));
    view.currentApproverIds = approverIds;
    approverIds.forEach((id) => everyApprover.add(id));
    await record({ name: 'app.access_request.reroute', step: step.number, currentApproverIds: approverIds });
    publishState();
    if (added.length > 0) {
      const notice = `reroute-${sequence}`;
      await email(() => mail.notifyApprovers({ requestId, step: step.number, approverIds: added, notice, deadline: view.stepDeadline ?? '' }));
    }
    return null;
  }

  /** Refuses the waiting decisions and actions that the directory, as re-read, no longer allows. */
  function refuseWhatIsNoLongerAllowed(): void {
    for (const item of [...inbox]) {
      let problem: Problem | null;
      if (item.kind === 'decision') {
        const othersDecided = new Set([...decidedSteps].filter((number) => number !== item.step));
        problem = decisionProblem(view, othersDecided, item.input);
        if (problem) decidedSteps.delete(item.step);
      } else {
        problem = item.kind === 'cancel' ? cancelProblem(view, item.input) : adminActionProblem(view, item.input);
      }
      if (!problem) continue;
      inbox.splice(inbox.indexOf(item), 1);
      answers.set(item.id, problem);
    }
  }

  /** A later step's approvers as the directory has them when the step starts (or the request closes). */
  async function approversAtStart(step: StepPlan): Promise<string[] | 'closed'> {
    if (step.number === 1 || !patched(CURRENT_DIRECTORY)) return step.approverIds;
    // While the directory is read, the step has begun and nobody but an admin may decide it yet.
    view.currentStep = step.number;
    view.currentApproverIds = [];
    const verdict = await activities.reviewPendingRequest({ requestId, step });
    if ('close' in verdict) {
      await finish('DELETED', { name: 'app.access_request.delete', reason: verdict.close });
      return 'closed';
    }
    if (verdict.adminIds && view.plan) view.plan = { ...view.plan, adminIds: verdict.adminIds };
    return verdict.approverIds ?? step.approverIds;
  }

  async function runStep(plan: RequestPlan, planned: StepPlan): Promise<StepEnd> {
    const approverIds = await approversAtStart(planned);
    if (approverIds === 'closed') return 'closed';
    const step: StepPlan = { ...planned, approverIds };
    const isLastStep = step.number === plan.steps.length;
    const deadline = Date.now() + step.timeoutDays * DAY_MS;
    const reminderAt = step.reminderDaysBefore ? deadline - step.reminderDaysBefore * DAY_MS : null;
    let reminded = reminderAt === null;
    view.currentStep = step.number;
    view.currentApproverIds = [...step.approverIds];
    stepGroup = step.type === 'GROUP' ? step.sourceId : undefined;
    view.stepDeadline = new Date(deadline).toISOString();
    step.approverIds.forEach((id) => everyApprover.add(id));
    await activities.setCurrentStep({ requestId, step: step.number, approverIds: step.approverIds });
    publishState();
    const stepDeadline = view.stepDeadline;
    await email(() => mail.notifyApprovers({ requestId, step: step.number, approverIds: step.approverIds, notice: 'request', deadline: stepDeadline }));

    for (;;) {
      const wakeAt = !reminded && reminderAt !== null ? reminderAt : deadline;
      await condition(() => inbox.length > 0 || reviewRequested, Math.max(wakeAt - Date.now(), 1));
      const reviewFirst = reviewRequested && inbox.length > 0 && patched(CURRENT_DIRECTORY);
      const item = reviewFirst ? undefined : inbox.shift();
      if (item) {
        const end = await handle(item, step, isLastStep);
        answers.set(item.id, null);
        if (end) return end;
        continue;
      }
      if (reviewRequested) {
        reviewRequested = false;
        const end = await review(step);
        if (end) return end;
        if (reviewFirst) refuseWhatIsNoLongerAllowed();
        continue;
      }
      if (!reminded && reminderAt !== null && Date.now() >= reminderAt) {
        reminded = true;
        await record({ name: 'app.access_request.remind', step: step.number });
        const approverIds = [...view.currentApproverIds];
        const stepDeadline = view.stepDeadline;
        await email(() => mail.notifyApprovers({ requestId, step: step.number, approverIds, notice: 'reminder', deadline: stepDeadline }));
        continue;
      }
      if (Date.now() >= deadline) {
        await finish('EXPIRED', { name: 'app.access_request.expire', step: step.number });
        return 'closed';
      }
    }
  }

  const submitted = await activities.submitAppRequest(command);
  if (submitted.accepted && submitted.plan.approvalRequired) {
    // Open for decisions before the request is announced: an approver who answers the announcement at
    // once finds the first step waiting (runStep sets the same state again).
    const first = submitted.plan.steps[0];
    view.plan = submitted.plan;
    view.status = 'PENDING';
    view.currentStep = first ? 1 : null;
    view.currentApproverIds = first ? [...first.approverIds] : [];
    stepGroup = first?.type === 'GROUP' ? first.sourceId : undefined;
  }
  await activities.publishEvents(submitted.eventIds);
  upsertSearchAttributes([
    { key: SelfServiceOrgId, value: command.data.orgId },
    { key: SelfServiceAppId, value: command.data.appId },
    { key: SelfServiceRequesterId, value: command.data.userId },
  ]);
  if (!submitted.accepted) {
    view.status = 'REJECTED';
    view.closedReason = `${submitted.code}: ${submitted.message}`;
    publishState();
    return snapshot();
  }

  const { plan } = submitted;
  view.plan = plan;
  view.status = 'PENDING';
  view.timeline.push({ sequence: 1, name: 'app.access_request.request', at: new Date().toISOString(), actorId: plan.requesterId, comment: plan.comment });
  upsertMemo({ appLabel: plan.appLabel, requesterId: plan.requesterId, approvalRequired: plan.approvalRequired });
  publishState();

  if (!plan.approvalRequired) {
    await grant();
  } else {
    for (const step of plan.steps) {
      if ((await runStep(plan, step)) === 'closed' || view.status !== 'PENDING') break;
    }
  }

  // Anything that arrived while the request was ending is refused: the request is no longer pending.
  for (const item of inbox.splice(0)) {
    answers.set(item.id, { code: 'REQUEST_NOT_PENDING', message: `request ${requestId} is ${view.status}` });
  }
  await condition(allHandlersFinished);
  await Promise.all(emails);
  return snapshot();
}

function sameMembers(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((id) => b.includes(id));
}
