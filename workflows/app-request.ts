import {
  ActivityFailure,
  ApplicationFailure,
  CancelledFailure,
  TemporalFailure,
  allHandlersFinished,
  condition,
  getExternalWorkflowHandle,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { RetryState, type SearchAttributeUpdatePair } from '@temporalio/common';
import type { Activities } from '../activities';
import type { Command } from '../events/inbound';
import {
  APP_REQUEST_WORKFLOW_PREFIX,
  appRequestWorkflowId,
  requesterOf,
  type Problem,
  type RequestPlan,
  type RequestView,
  type ReviewVerdict,
  type StepPlan,
} from '../rules/app-request';
import { RECORDING } from './activity-options';
import { legacyAppRequest } from './app-request-legacy';
import { administerUpdate, cancelUpdate, decideUpdate, extendAccessSignal, reviewSignal, statusQuery } from './app-request-messages';
import { AppRequestState, type Change, type Email, type Message } from './app-request-state';
import { endingOnPermanentFailure } from './command-failure';
import { SelfServiceAppId, SelfServiceApproverIds, SelfServiceOrgId, SelfServiceRequesterId, SelfServiceStatus } from './search-attributes';

export { administerUpdate, cancelUpdate, decideUpdate, extendAccessSignal, reviewSignal, statusQuery } from './app-request-messages';

/**
 * Since this patch the outbox relay publishes what the request records (no publishing here), its
 * short database steps run as local activities, and it is the state machine of app-request-state.ts.
 * Requests started before it replay the frozen app-request-legacy.ts.
 */
const APP_REQUEST_V2 = 'app-request-v2';

/**
 * The "requested for you" email of a request made on behalf of a report. Only such requests reach it
 * (no earlier history has one), so the patch is a marker of the new command rather than a branch.
 */
const REQUESTED_FOR_NOTICE = 'app-request-requested-for-notice';

/**
 * Short database steps run as local activities: inside the workflow task, no round trip through the
 * server. A transient failure is retried at most 5 s apart; after a minute of it (an outage) the step
 * goes on as a regular activity, whose retries add nothing to the history (a local activity that keeps
 * failing adds three history events every 8 s). Bounded by attempts: with SDK 1.24 a local activity's
 * scheduleToCloseTimeout did not stop its retries (measured).
 */
const local = proxyLocalActivities<Activities>({
  startToCloseTimeout: RECORDING.startToCloseTimeout,
  // 0.5, 1, 2, 4 s, then every 5 s: the 15th attempt comes about a minute after the first.
  retry: { ...RECORDING.retry, maximumAttempts: 15 },
});
const durable = proxyActivities<Activities>(RECORDING);

/**
 * Since this patch a request granted at once (no approval) sends its outcome email as a local activity
 * first, inside the workflow task, and as a regular activity only if SMTP stays away; and it upserts its
 * search attributes once, after the grant, instead of after the submission and again after the grant.
 * Such a request then ends in one workflow task. Emails of requests with approvers stay regular
 * activities: a workflow task waits for its local activities, and an approver's Update waits for that
 * task, so a slow SMTP server would hold up the decision's result.
 */
const LOCAL_MAIL = 'app-request-local-mail';

/** An email, sent locally: three tries within a few seconds, then it goes on as a regular activity (`mail`). */
const localMail = proxyLocalActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '500 milliseconds', backoffCoefficient: 2, maximumInterval: '2 seconds', maximumAttempts: 3 },
});

/** Emails ride out an SMTP outage for a day; a recipient the server refuses fails at once (non-retryable). */
const mail = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  scheduleToCloseTimeout: '1 day',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '5 minutes' },
});

type AppRequestedCommand = Extract<Command, { type: 'selfservice.app.requested.v1' }>;

/**
 * One org-managed app request, from submission to its end: auto-grant when the app needs no
 * approval, otherwise the approver steps in order (decisions, reminders, timeouts, re-routing), then
 * the grant or the closing state. `start.requestId` comes from the ingress (older starts lack it).
 */
export async function appRequestWorkflow(command: AppRequestedCommand, start?: { requestId: string }): Promise<RequestView> {
  if (!patched(APP_REQUEST_V2)) return legacyAppRequest(command);
  const requestId = start?.requestId ?? workflowInfo().workflowId.slice(APP_REQUEST_WORKFLOW_PREFIX.length);
  return endingOnPermanentFailure(command, () => runAppRequest(command, requestId));
}

async function runAppRequest(command: AppRequestedCommand, requestId: string): Promise<RequestView> {
  const state = new AppRequestState({ requestId, workflowId: workflowInfo().workflowId });
  const emails: Promise<void>[] = [];
  let published = '';
  /** Search attributes held back for the next upsert (an auto-granted request's, since LOCAL_MAIL). */
  let carried: SearchAttributeUpdatePair[] = [];
  /** Granted at once, since LOCAL_MAIL: its outcome email goes out locally first. */
  let grantedAtOnce = false;

  setHandler(statusQuery, () => state.snapshot());
  setHandler(reviewSignal, () => {
    state.reviewRequested = true;
  });
  setHandler(extendAccessSignal, (extension) => state.queueExtension(extension));
  // Validators refuse before anything is recorded; handlers queue what they accept for the step loop.
  setHandler(decideUpdate, (input) => take({ kind: 'decision', input }), { validator: (input) => refuseIf(state.problemWith({ kind: 'decision', input })) });
  setHandler(cancelUpdate, (input) => take({ kind: 'cancel', input }), { validator: (input) => refuseIf(state.problemWith({ kind: 'cancel', input })) });
  setHandler(
    administerUpdate,
    async (input) => {
      if (state.submitting) await submission();
      const plan = state.view.plan;
      if (!plan) refuse({ code: 'REQUEST_NOT_PENDING', message: `request ${requestId} is ${state.view.status}` });
      await databaseStep((steps) => steps.authorizeRequestAdmin({ orgId: plan.orgId, actorId: input.actorId, requestId, action: input.action }));
      return take({ kind: 'admin', input });
    },
    { validator: (input) => refuseIf(state.problemWith({ kind: 'admin', input })) },
  );

  /** A message that arrives while the submission is recorded (its announcement may be out already) waits for it. */
  const submission = () => condition(() => !state.submitting);

  /**
   * Queues a message for the step loop; its Update returns once the loop has recorded what it did.
   * Once the request is open nothing is awaited before `receive`, so a second decision on the same
   * step already meets the first one's claim in its validator.
   */
  async function take(message: Message): Promise<RequestView> {
    if (state.submitting) await submission();
    const id = state.receive(message);
    if (typeof id !== 'number') refuse(id);
    await condition(() => state.isAnswered(id));
    refuseIf(state.answerTo(id));
    return state.snapshot();
  }

  /** Records a change (one local activity), keeps the search attributes current, sends its emails beside the request. */
  async function carryOut(change: Change): Promise<Change['end']> {
    if (change.transitions.length > 0 || change.accepted) {
      const plan = state.view.plan;
      const request = plan ? { orgId: plan.orgId, appId: plan.appId, requesterId: plan.requesterId } : undefined;
      await databaseStep((steps) => steps.recordRequestChange({ transitions: change.transitions, accepted: change.accepted, request }));
    }
    publishState();
    change.emails.forEach(send);
    return change.end;
  }

  /** Status and approvers as search attributes, upserted when they changed (with `also` at the start). */
  function publishState(also: SearchAttributeUpdatePair[] = []): void {
    const approvers = state.searchableApprovers();
    const current = JSON.stringify([state.view.status, approvers]);
    const extra = [...carried, ...also];
    if (current === published && extra.length === 0) return;
    published = current;
    carried = [];
    upsertSearchAttributes([...extra, { key: SelfServiceStatus, value: state.view.status }, { key: SelfServiceApproverIds, value: approvers }]);
  }

  /** A failed email is logged; the request goes on. */
  function send(email: Email): void {
    if (email.to === 'approvers') beside(mail.notifyApprovers(email.notice));
    else if (email.to === 'outcome' && grantedAtOnce) beside(locallyFirst((mailer) => mailer.notifyOutcome(email.notice), localMail, mail));
    else if (email.to === 'outcome') beside(mail.notifyOutcome(email.notice));
    else beside(mail.notifyAccess(email.notice));
  }

  function beside(sending: Promise<unknown>): void {
    emails.push(
      sending.then(
        () => undefined,
        (error: unknown) => log.warn('email not sent', { requestId, error: error instanceof Error ? error.message : String(error) }),
      ),
    );
  }

  /**
   * A time-bound grant, after it was granted: reminders, extensions and an admin's revocation until the
   * access ends and the app leaves the dashboard.
   */
  async function runAccess(): Promise<void> {
    while (state.accessActive) {
      await condition(() => state.hasAccessWork(), Math.max(state.accessWakeAt() - Date.now(), 1));
      const extended = state.nextExtension(Date.now());
      if (extended) {
        await carryOut(extended);
        continue;
      }
      const next = state.handleNext(Date.now());
      if (next) {
        await carryOut(next.change);
        state.answered(next.id);
        continue;
      }
      const due = state.accessDue(Date.now());
      if (due) await carryOut(due);
    }
  }

  /** One approver step: it begins (a later one with the directory re-read), then runs until it is approved or the request ends. */
  async function runStep(plan: RequestPlan, planned: StepPlan): Promise<void> {
    let verdict: ReviewVerdict | null = null;
    if (planned.number > 1) {
      state.stepBegins(planned.number);
      // `at`: delegations while away are judged at the request's own time (its workflow clock).
      verdict = await databaseStep((steps) => steps.startRequestStep({ plan, step: planned, at: Date.now() }));
    }
    if (await carryOut(state.startStep(planned, verdict, Date.now()))) return;
    for (;;) {
      await condition(() => state.hasWork(), Math.max(state.wakeAt() - Date.now(), 1));
      let end: Change['end'];
      if (state.reviewRequested) {
        // Reviewed first: the decisions that wait are then judged against the directory as it is now.
        state.reviewRequested = false;
        const escalated = state.escalated ? { escalated: true } : {};
        const review = await databaseStep((steps) => steps.reviewPendingRequest({ requestId, step: state.currentStep, plan, ...escalated, at: Date.now() }));
        end = await carryOut(state.reviewed(review, Date.now()));
        if (!end) state.refuseWhatIsNoLongerAllowed();
      } else {
        const next = state.handleNext(Date.now());
        if (next) {
          end = await carryOut(next.change);
          state.answered(next.id);
        } else if (state.escalationDue(Date.now()) && state.currentStep) {
          const step = state.currentStep;
          const verdict = await databaseStep((steps) => steps.escalateRequestStep({ plan, step, at: Date.now() }));
          end = await carryOut(state.escalate(verdict, Date.now()));
        } else {
          const due = state.due(Date.now());
          end = due ? await carryOut(due) : null;
        }
      }
      if (end) return;
    }
  }

  const submitted = await databaseStep((steps) => steps.submitAppRequest(command));
  if (submitted.accepted) state.open(submitted.plan, Date.now());
  else state.reject(submitted.code, submitted.message);
  const identity: SearchAttributeUpdatePair[] = [
    { key: SelfServiceOrgId, value: command.data.orgId },
    { key: SelfServiceAppId, value: command.data.appId },
    // The requester of record: the report when a manager asked on their behalf, else the caller (as before).
    { key: SelfServiceRequesterId, value: requesterOf(command.data).requesterId },
  ];
  // Granted at once: one upsert after the grant carries everything (the request is never seen pending).
  grantedAtOnce = submitted.accepted && !submitted.plan.approvalRequired && patched(LOCAL_MAIL);
  if (grantedAtOnce) carried = identity;
  else publishState(identity);
  if (submitted.accepted) {
    const { plan } = submitted;
    upsertMemo({
      appLabel: plan.appLabel,
      requesterId: plan.requesterId,
      approvalRequired: plan.approvalRequired,
      ...(plan.requestedById ? { requestedById: plan.requestedById } : {}),
    });
    // The report hears that their manager asked in their name; one granted at once hears it from the outcome email.
    if (plan.requestedById && plan.approvalRequired && patched(REQUESTED_FOR_NOTICE)) beside(mail.notifyRequestedFor({ requestId, plan }));
    if (!plan.approvalRequired) {
      await carryOut(state.grant(undefined, Date.now()));
    } else {
      for (const step of plan.steps) {
        await runStep(plan, step);
        if (!state.pending) break;
      }
    }
    if (state.accessActive) await runAccess();
    if (plan.extendsRequestId && state.view.status === 'APPROVED') await extendGrant(plan.extendsRequestId, plan);
  }

  state.refuseTheRest();
  await condition(allHandlersFinished);
  await Promise.all(emails);
  return state.snapshot();
}

/**
 * An extension was granted: the grant it extends runs longer. Its workflow waits for the end of the
 * access, so it takes the signal; one that has ended meanwhile cannot (logged: the extension came late).
 */
async function extendGrant(grantRequestId: string, plan: RequestPlan): Promise<void> {
  try {
    await getExternalWorkflowHandle(appRequestWorkflowId(grantRequestId)).signal(extendAccessSignal, { extensionRequestId: plan.requestId, days: plan.access?.days ?? 0 });
  } catch (error) {
    log.warn('the grant to extend has ended', { requestId: plan.requestId, grantRequestId, error: error instanceof Error ? error.message : String(error) });
  }
}

/**
 * Runs a short database step locally, then, if it outlasted its local retries, as a regular activity.
 * A local activity's failure comes bare (no ActivityFailure around it, unlike a regular one's); it is
 * given that shape, so that endingOnPermanentFailure and the callers of an Update read both alike.
 */
function databaseStep<T>(run: (steps: typeof local) => Promise<T>): Promise<T> {
  return locallyFirst(run, local, durable);
}

/** `run` on local activities, then, if they failed with retries left, on regular ones (databaseStep). */
async function locallyFirst<T>(run: (steps: typeof local) => Promise<T>, locally: typeof local, durably: typeof durable): Promise<T> {
  try {
    return await run(locally);
  } catch (error) {
    if (error instanceof ActivityFailure || error instanceof CancelledFailure || !(error instanceof TemporalFailure)) throw error;
    if (error instanceof ApplicationFailure && error.nonRetryable) {
      throw new ActivityFailure(error.message, 'local activity', undefined, RetryState.NON_RETRYABLE_FAILURE, undefined, error);
    }
    return run(durably);
  }
}

function refuse(problem: Problem): never {
  throw ApplicationFailure.create({ type: problem.code, message: problem.message, nonRetryable: true });
}

function refuseIf(problem: Problem | null): void {
  if (problem) refuse(problem);
}
