import {
  adminActionProblem,
  cancelProblem,
  DAY_MS,
  decisionProblem,
  searchableApprovers,
  type AdminActionInput,
  type ApproversNotice,
  type CancelInput,
  type DecisionInput,
  type OutcomeNotice,
  type Problem,
  type RequestPlan,
  type RequestView,
  type ReviewVerdict,
  type StepPlan,
  type Transition,
} from '../rules/app-request';
import type { CommandRef } from '../rules/commands';

/**
 * The state machine of one app request: what it shows (the view), what waits (the inbox), and what a
 * decision, cancellation, admin action, timer or review does to it. Pure: no Temporal, no I/O, time
 * comes in as `now`. Each event returns a Change that the workflow records, announces and emails.
 */

export type Message =
  | { kind: 'decision'; input: DecisionInput }
  | { kind: 'cancel'; input: CancelInput }
  | { kind: 'admin'; input: AdminActionInput };

type InboxItem = Message & { id: number; step: number };

type Ending = 'APPROVED' | 'DENIED' | 'EXPIRED' | 'CANCELLED' | 'DELETED';
type Draft = Omit<Transition, 'requestId' | 'sequence' | 'at'>;

export type Email = { to: 'approvers'; notice: ApproversNotice } | { to: 'outcome'; notice: OutcomeNotice };
export type Accepted = { command: CommandRef; details: Record<string, unknown> };

/** What one event did, for the workflow to carry out. */
export interface Change {
  /** To record in order, in one transaction. */
  transitions: Transition[];
  /** The accepted result of the Kafka command that caused it. */
  accepted?: Accepted;
  /** Sent beside the request: nothing waits on SMTP. */
  emails: Email[];
  /** The step was approved, or the request ended. */
  end: 'approved' | 'closed' | null;
}

/** What goes with an ending: the transitions that led to it, the command it acknowledges. */
type Also = { before?: Transition[]; accepted?: Accepted };

export class AppRequestState {
  readonly view: RequestView;
  /** A directory or configuration change asked for a review. */
  reviewRequested = false;
  private readonly decidedSteps = new Set<number>();
  private readonly inbox: InboxItem[] = [];
  private readonly answers = new Map<number, Problem | null>();
  private readonly everyApprover = new Set<string>();
  private nextItemId = 1;
  private sequence = 1;
  private resends = 0;
  /** The current step, with its approvers as resolved when it began, and its timers. */
  private current: { plan: StepPlan; deadline: number; reminderAt: number | null } | null = null;
  /** The group of the current step, if it is a group step: its id is searchable when its members are too many. */
  private stepGroup: string | undefined;

  constructor(private readonly ids: { requestId: string; workflowId: string }) {
    this.view = {
      requestId: ids.requestId,
      status: 'SUBMITTED',
      plan: null,
      currentStep: null,
      currentApproverIds: [],
      stepDeadline: null,
      closedReason: null,
      timeline: [],
    };
  }

  get submitting(): boolean {
    return this.view.status === 'SUBMITTED';
  }

  get pending(): boolean {
    return this.view.status === 'PENDING';
  }

  snapshot(): RequestView {
    return { ...this.view, currentApproverIds: [...this.view.currentApproverIds], timeline: [...this.view.timeline] };
  }

  searchableApprovers(): string[] {
    return searchableApprovers(this.view.currentApproverIds, this.stepGroup);
  }

  // Submission.

  reject(code: string, message: string): void {
    this.view.status = 'REJECTED';
    this.view.closedReason = `${code}: ${message}`;
  }

  /** The submission is recorded: the request is pending, its first step open for decisions at once. */
  open(plan: RequestPlan, now: number): void {
    const first = plan.approvalRequired ? plan.steps[0] : undefined;
    this.view.plan = plan;
    this.view.status = 'PENDING';
    this.view.currentStep = first ? 1 : null;
    this.view.currentApproverIds = first ? [...first.approverIds] : [];
    this.stepGroup = first?.type === 'GROUP' ? first.sourceId : undefined;
    this.view.timeline.push({ sequence: 1, name: 'app.access_request.request', at: iso(now), actorId: plan.requesterId, comment: plan.comment });
  }

  // Messages: refused before anything is recorded, then queued for the step loop.

  /** Why a message cannot be taken now, or null. While the submission is recorded nothing is known yet: it waits for it. */
  problemWith(message: Message): Problem | null {
    if (this.submitting) return null;
    if (message.kind === 'decision') return decisionProblem(this.view, this.decidedSteps, message.input);
    if (message.kind === 'cancel') return cancelProblem(this.view, message.input);
    return adminActionProblem(this.view, message.input);
  }

  /** Queues a message, or says why not; a decision claims its step at once, so a second one is refused. */
  receive(message: Message): number | Problem {
    const problem = this.problemWith(message);
    if (problem) return problem;
    const step = this.view.currentStep ?? 0;
    if (message.kind === 'decision') this.decidedSteps.add(step);
    const id = this.nextItemId++;
    this.inbox.push({ ...message, id, step });
    return id;
  }

  isAnswered(id: number): boolean {
    return this.answers.has(id);
  }

  answerTo(id: number): Problem | null {
    return this.answers.get(id) ?? null;
  }

  hasWork(): boolean {
    return this.inbox.length > 0 || this.reviewRequested;
  }

  /** Refuses the waiting messages that the request, as re-read, no longer allows. */
  refuseWhatIsNoLongerAllowed(): void {
    for (const item of [...this.inbox]) {
      let problem: Problem | null;
      if (item.kind === 'decision') {
        const othersDecided = new Set([...this.decidedSteps].filter((number) => number !== item.step));
        problem = decisionProblem(this.view, othersDecided, item.input);
        if (problem) this.decidedSteps.delete(item.step);
      } else {
        problem = this.problemWith(item);
      }
      if (!problem) continue;
      this.inbox.splice(this.inbox.indexOf(item), 1);
      this.answers.set(item.id, problem);
    }
  }

  /** Anything still waiting when the request ends is refused: it is no longer pending. */
  refuseTheRest(): void {
    for (const item of this.inbox.splice(0)) {
      this.answers.set(item.id, { code: 'REQUEST_NOT_PENDING', message: `request ${this.ids.requestId} is ${this.view.status}` });
    }
  }

  // Steps.

  /** A later step has begun; nobody but an admin may decide it while its approvers are read. */
  stepBegins(number: number): void {
    this.view.currentStep = number;
    this.view.currentApproverIds = [];
  }

  /** The step starts with its approvers as the directory has them now (a later step's were re-read), or the request closes. */
  startStep(planned: StepPlan, verdict: ReviewVerdict | null, now: number): Change {
    if (verdict && 'close' in verdict) return this.finish('DELETED', { name: 'app.access_request.delete', reason: verdict.close }, now);
    if (verdict) this.adoptAdmins(verdict);
    const step = { ...planned, approverIds: verdict?.approverIds ?? planned.approverIds };
    const deadline = now + step.timeoutDays * DAY_MS;
    this.current = { plan: step, deadline, reminderAt: step.reminderDaysBefore ? deadline - step.reminderDaysBefore * DAY_MS : null };
    this.view.currentStep = step.number;
    this.view.currentApproverIds = [...step.approverIds];
    this.view.stepDeadline = iso(deadline);
    this.stepGroup = step.type === 'GROUP' ? step.sourceId : undefined;
    step.approverIds.forEach((id) => this.everyApprover.add(id));
    return this.change({ emails: [this.approversEmail(step.approverIds, 'request')] });
  }

  /** The step as it runs (approvers resolved at its start), for a review. */
  get currentStep(): StepPlan | null {
    return this.current?.plan ?? null;
  }

  /** When the step's next timer fires: its reminder, then its deadline. */
  wakeAt(): number {
    return this.current?.reminderAt ?? this.current?.deadline ?? Number.MAX_SAFE_INTEGER;
  }

  /** The timer that is due, if any. */
  due(now: number): Change | null {
    const step = this.current;
    if (!step) return null;
    if (step.reminderAt !== null && now >= step.reminderAt) {
      step.reminderAt = null;
      const reminded = this.transition({ name: 'app.access_request.remind', step: step.plan.number }, now);
      return this.change({ transitions: [reminded], emails: [this.approversEmail(this.view.currentApproverIds, 'reminder')] });
    }
    if (now >= step.deadline) return this.finish('EXPIRED', { name: 'app.access_request.expire', step: step.plan.number }, now);
    return null;
  }

  // What each event does.

  /** The next waiting message, handled: its transitions, its acknowledgement, its emails. */
  handleNext(now: number): { id: number; change: Change } | null {
    const item = this.inbox.shift();
    if (!item) return null;
    return { id: item.id, change: this.handle(item, now) };
  }

  /** The message's Update returns once its change is recorded. */
  answered(id: number): void {
    this.answers.set(id, null);
  }

  private handle(item: InboxItem, now: number): Change {
    const step = this.current?.plan.number;
    if (item.kind === 'decision') {
      const { approverId, decision, comment } = item.input;
      const accepted = this.acknowledge(item.input, 'selfservice.app-request.decided.v1', { step, decision });
      if (decision === 'DENY') {
        const denied = this.transition({ name: 'app.access_request.approver.deny', actorId: approverId, step, comment }, now);
        return this.finish('DENIED', { name: 'app.access_request.deny', actorId: approverId, step, comment }, now, { before: [denied], accepted });
      }
      const approved = this.transition({ name: 'app.access_request.approver.approve', actorId: approverId, step, comment }, now);
      if (step === this.view.plan?.steps.length) return this.grant(approverId, now, { before: [approved], accepted });
      return this.change({ transitions: [approved], accepted, end: 'approved' });
    }
    if (item.kind === 'cancel') {
      const accepted = this.acknowledge(item.input, 'selfservice.app-request.cancelled.v1', { status: 'CANCELLED' });
      return this.finish('CANCELLED', { name: 'app.access_request.cancel', actorId: item.input.requesterId }, now, { accepted });
    }
    const { actorId, action, reason } = item.input;
    if (action === 'RESEND') {
      this.resends += 1;
      const accepted = this.acknowledge(item.input, 'selfservice.app-request.admin-action.v1', { action });
      return this.change({ accepted, emails: [this.approversEmail(this.view.currentApproverIds, `resend-${this.resends}`)] });
    }
    if (action === 'DELETE') {
      const accepted = this.acknowledge(item.input, 'selfservice.app-request.admin-action.v1', { action, status: 'DELETED' });
      return this.finish('DELETED', { name: 'app.access_request.delete', actorId, reason: reason ?? `deleted by administrator ${actorId}` }, now, { accepted });
    }
    const accepted = this.acknowledge(item.input, 'selfservice.app-request.admin-action.v1', { action, status: 'APPROVED' });
    const overridden = this.transition({ name: 'app.access_request.override', actorId, step, comment: reason }, now);
    return this.grant(actorId, now, { before: [overridden], accepted });
  }

  /** The request is granted: the app goes on the requester's dashboard. */
  grant(actorId: string | undefined, now: number, also: Also = {}): Change {
    return this.finish('APPROVED', { name: 'app.access_request.grant', actorId, assign: true }, now, also);
  }

  /** After a directory or configuration change: close the request, or re-route the step. */
  reviewed(verdict: ReviewVerdict, now: number): Change {
    if ('close' in verdict) return this.finish('DELETED', { name: 'app.access_request.delete', reason: verdict.close }, now);
    this.adoptAdmins(verdict);
    const approverIds = verdict.approverIds;
    const current = this.view.currentApproverIds;
    if (!approverIds || (approverIds.length === current.length && approverIds.every((id) => current.includes(id)))) return this.change({});
    const added = approverIds.filter((id) => !current.includes(id));
    this.view.currentApproverIds = [...approverIds];
    approverIds.forEach((id) => this.everyApprover.add(id));
    const rerouted = this.transition({ name: 'app.access_request.reroute', step: this.current?.plan.number, currentApproverIds: approverIds }, now);
    return this.change({ transitions: [rerouted], emails: added.length > 0 ? [this.approversEmail(added, `reroute-${rerouted.sequence}`)] : [] });
  }

  private adoptAdmins(verdict: { adminIds?: string[] }): void {
    if (verdict.adminIds && this.view.plan) this.view.plan = { ...this.view.plan, adminIds: verdict.adminIds };
  }

  private finish(status: Ending, draft: Draft, now: number, also: Also = {}): Change {
    this.view.status = status;
    this.view.closedReason = draft.reason ?? null;
    this.view.currentStep = null;
    this.view.currentApproverIds = [];
    this.view.stepDeadline = null;
    this.current = null;
    const ending = this.transition({ ...draft, status }, now);
    const emails: Email[] = [];
    if (status !== 'CANCELLED') {
      emails.push({
        to: 'outcome',
        notice: {
          requestId: this.ids.requestId,
          outcome: status,
          comment: draft.comment,
          reason: draft.reason,
          actorId: draft.actorId,
          approverIds: [...this.everyApprover],
          plan: this.plan(),
        },
      });
    }
    return { transitions: [...(also.before ?? []), ending], accepted: also.accepted, emails, end: 'closed' };
  }

  private transition(draft: Draft, now: number): Transition {
    this.sequence += 1;
    const at = iso(now);
    this.view.timeline.push({ sequence: this.sequence, name: draft.name, at, actorId: draft.actorId, step: draft.step, comment: draft.comment });
    return { requestId: this.ids.requestId, sequence: this.sequence, at, ...draft };
  }

  /** The accepted result of the Kafka command behind a message (an Update from elsewhere has none). */
  private acknowledge(input: { commandId?: string }, type: string, details: Record<string, unknown>): Accepted | undefined {
    const plan = this.view.plan;
    if (!input.commandId || !plan) return undefined;
    return { command: { commandId: input.commandId, type, orgId: plan.orgId }, details: { requestId: this.ids.requestId, workflowId: this.ids.workflowId, ...details } };
  }

  private approversEmail(approverIds: readonly string[], notice: string): Email {
    return {
      to: 'approvers',
      notice: { requestId: this.ids.requestId, step: this.current?.plan.number ?? 0, approverIds: [...approverIds], notice, deadline: this.view.stepDeadline ?? '', plan: this.plan() },
    };
  }

  private plan(): RequestPlan {
    if (!this.view.plan) throw new Error(`request ${this.ids.requestId} has no plan yet`);
    return this.view.plan;
  }

  private change(change: Partial<Change>): Change {
    return { transitions: [], emails: [], end: null, ...change };
  }
}

const iso = (ms: number) => new Date(ms).toISOString();
