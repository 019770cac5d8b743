import {
  type AccessExtension,
  type AccessNotice,
  adminActionProblem,
  cancelProblem,
  DAY_MS,
  decisionProblem,
  reroutedTo,
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
import { stepTimers } from '../rules/business-calendar';
import { delegatedAmong } from '../rules/delegation';
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

export type Email = { to: 'approvers'; notice: ApproversNotice } | { to: 'outcome'; notice: OutcomeNotice } | { to: 'access'; notice: AccessNotice };
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
  /** The current step, with its approvers as resolved when it began, its timers, and whether it was escalated. */
  private current: { plan: StepPlan; deadline: number; reminderAt: number | null; escalated: boolean } | null = null;
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
    const delegatedFrom = delegatedAmong(this.current?.plan.delegatedFrom, this.view.currentApproverIds);
    return { ...this.view, currentApproverIds: [...this.view.currentApproverIds], timeline: [...this.view.timeline], ...(delegatedFrom ? { delegatedFrom } : {}) };
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
    // The manager who asked on a report's behalf is the actor, as in the history row and the `request` event.
    this.view.timeline.push({ sequence: 1, name: 'app.access_request.request', at: iso(now), actorId: plan.requestedById ?? plan.requesterId, comment: plan.comment });
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
    // A later step's delegates are those of its verdict (delegations in force when it begins).
    const step = delegating({ ...planned, approverIds: verdict?.approverIds ?? planned.approverIds }, verdict ? verdict.delegatedFrom : planned.delegatedFrom);
    const { deadline, reminderAt } = stepTimers(step, now, this.view.plan?.calendar);
    this.current = { plan: step, deadline, reminderAt, escalated: false };
    this.view.currentStep = step.number;
    this.view.currentApproverIds = [...step.approverIds];
    this.view.stepDeadline = iso(deadline);
    this.stepGroup = step.type === 'GROUP' ? step.sourceId : undefined;
    step.approverIds.forEach((id) => this.everyApprover.add(id));
    return this.change({ emails: [this.approversEmail(step.approverIds, 'request')] });
  }

  /** The current step was escalated: its escalation approvers may decide it too. */
  get escalated(): boolean {
    return this.current?.escalated ?? false;
  }

  /** The step as it runs (approvers resolved at its start), for a review. */
  get currentStep(): StepPlan | null {
    return this.current?.plan ?? null;
  }

  /** When the step's next timer fires: its reminder, then its deadline. */
  wakeAt(): number {
    return this.current?.reminderAt ?? this.current?.deadline ?? Number.MAX_SAFE_INTEGER;
  }

  /** The timer that is due, if any (an escalation that is due is not: see escalationDue). */
  due(now: number): Change | null {
    const step = this.current;
    if (!step) return null;
    if (step.reminderAt !== null && now >= step.reminderAt) {
      step.reminderAt = null;
      const reminded = this.transition({ name: 'app.access_request.remind', step: step.plan.number }, now);
      const notice = step.escalated ? 'escalation-reminder' : 'reminder';
      return this.change({ transitions: [reminded], emails: [this.approversEmail(this.view.currentApproverIds, notice)] });
    }
    if (now >= step.deadline && !this.escalationDue(now)) return this.finish('EXPIRED', { name: 'app.access_request.expire', step: step.plan.number }, now);
    return null;
  }

  /** The step timed out, its reminder is done, and it escalates instead of expiring: its escalation approvers are to be resolved. */
  escalationDue(now: number): boolean {
    const step = this.current;
    if (!step?.plan.escalation || step.escalated) return false;
    return now >= step.deadline && (step.reminderAt === null || now < step.reminderAt);
  }

  /**
   * The step escalates: its escalation approvers (as the directory has them now) may decide it beside
   * its approvers, until the escalation's own timeout; then the request expires. Or it closes, when
   * the request may no longer go on.
   */
  escalate(verdict: ReviewVerdict, now: number): Change {
    const step = this.current;
    const escalation = step?.plan.escalation;
    if (!step || !escalation) return this.change({});
    if ('close' in verdict) return this.finish('DELETED', { name: 'app.access_request.delete', reason: verdict.close }, now);
    this.adoptAdmins(verdict);
    const current = this.view.currentApproverIds;
    const added = (verdict.approverIds ?? []).filter((id) => !current.includes(id));
    const approverIds = [...current, ...added];
    const { deadline, reminderAt } = stepTimers(escalation, now, this.view.plan?.calendar);
    const delegatedFrom = delegatedAmong({ ...verdict.delegatedFrom, ...step.plan.delegatedFrom }, approverIds);
    Object.assign(step, { deadline, reminderAt, escalated: true, plan: delegating(step.plan, delegatedFrom) });
    this.view.currentApproverIds = approverIds;
    this.view.stepDeadline = iso(deadline);
    added.forEach((id) => this.everyApprover.add(id));
    const escalated = this.transition(
      { name: 'app.access_request.escalate', step: step.plan.number, currentApproverIds: approverIds, stepDeadline: iso(deadline), ...(delegatedFrom ? { delegatedFrom } : {}) },
      now,
    );
    return this.change({ transitions: [escalated], emails: added.length > 0 ? [this.approversEmail(added, 'escalation')] : [] });
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
      // A delegate decides on behalf of the approver who is away: the decision names both.
      const awayId = this.current?.plan.delegatedFrom?.[approverId];
      const onBehalf = awayId && this.view.currentApproverIds.includes(approverId) ? { onBehalfOf: awayId } : {};
      if (decision === 'DENY') {
        const denied = this.transition({ name: 'app.access_request.approver.deny', actorId: approverId, step, comment, ...onBehalf }, now);
        return this.finish('DENIED', { name: 'app.access_request.deny', actorId: approverId, step, comment, ...onBehalf }, now, { before: [denied], accepted });
      }
      const set = item.input.attributes && Object.keys(item.input.attributes).length > 0 ? { attributes: item.input.attributes } : {};
      if (set.attributes) this.view.attributes = { ...this.view.attributes, ...set.attributes };
      const approved = this.transition({ name: 'app.access_request.approver.approve', actorId: approverId, step, comment, ...onBehalf, ...set }, now);
      if (step === this.view.plan?.steps.length) return this.grant(approverId, now, { before: [approved], accepted });
      return this.change({ transitions: [approved], accepted, end: 'approved' });
    }
    if (item.kind === 'cancel') {
      const accepted = this.acknowledge(item.input, 'selfservice.app-request.cancelled.v1', { status: 'CANCELLED' });
      return this.finish('CANCELLED', { name: 'app.access_request.cancel', actorId: item.input.requesterId }, now, { accepted });
    }
    const { actorId, action, reason } = item.input;
    if (action === 'REVOKE') {
      const accepted = this.acknowledge(item.input, 'selfservice.app-request.admin-action.v1', { action, access: 'REVOKED' });
      const why = reason ?? `revoked by administrator ${actorId}`;
      return this.endAccess('REVOKED', { name: 'app.access_request.access.revoke', actorId, reason: why, unassign: 'ACCESS_REVOKED' }, now, accepted);
    }
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
    const plan = this.view.plan;
    // An extension puts nothing on the dashboard: the grant it extends is there.
    if (plan?.extendsRequestId) return this.finish('APPROVED', { name: 'app.access_request.grant', actorId }, now, also);
    const access = plan?.access ? { accessEndsAt: this.openAccess(plan.access, now) } : {};
    // The grant carries the app user attributes the approvers set.
    const attributes = this.view.attributes ? { attributes: { ...this.view.attributes } } : {};
    return this.finish('APPROVED', { name: 'app.access_request.grant', actorId, assign: true, ...access, ...attributes }, now, also);
  }

  // A time-bound grant: after the grant the request waits for its end, reminds the user before it,
  // takes extensions and an admin's early revocation, then takes the app off the dashboard.

  private access: { endsAt: number; reminderAt: number | null } | null = null;
  private readonly extensions: AccessExtension[] = [];
  private readonly extended = new Set<string>();

  /** The grant's access runs from now; returns when it ends. */
  private openAccess(access: { days: number; reminderDaysBefore?: number }, now: number): string {
    const endsAt = now + access.days * DAY_MS;
    this.access = { endsAt, reminderAt: this.accessReminder(endsAt, now) };
    this.view.access = { endsAt: iso(endsAt), status: 'ACTIVE', extensions: 0 };
    return iso(endsAt);
  }

  private accessReminder(endsAt: number, now: number): number | null {
    const days = this.view.plan?.access?.reminderDaysBefore;
    if (!days) return null;
    const at = endsAt - days * DAY_MS;
    return at > now ? at : null;
  }

  get accessActive(): boolean {
    return this.view.access?.status === 'ACTIVE';
  }

  /** An extension was granted (its workflow signals); repeated or late ones are dropped. */
  queueExtension(extension: AccessExtension): void {
    if (!this.accessActive || this.extended.has(extension.extensionRequestId)) return;
    this.extended.add(extension.extensionRequestId);
    this.extensions.push(extension);
  }

  hasAccessWork(): boolean {
    return this.inbox.length > 0 || this.extensions.length > 0;
  }

  accessWakeAt(): number {
    return this.access?.reminderAt ?? this.access?.endsAt ?? Number.MAX_SAFE_INTEGER;
  }

  /** The next extension, applied: the access runs `days` from now, or as long as it would have if that is later. */
  nextExtension(now: number): Change | null {
    const extension = this.extensions.shift();
    const access = this.access;
    if (!extension || !access || !this.view.access) return null;
    access.endsAt = Math.max(access.endsAt, now + extension.days * DAY_MS);
    access.reminderAt = this.accessReminder(access.endsAt, now);
    this.view.access = { ...this.view.access, endsAt: iso(access.endsAt), extensions: this.view.access.extensions + 1 };
    const extended = this.transition({ name: 'app.access_request.access.extend', accessEndsAt: iso(access.endsAt), extensionRequestId: extension.extensionRequestId }, now);
    return this.change({ transitions: [extended] });
  }

  /** The access timer that is due: the reminder, then the end. */
  accessDue(now: number): Change | null {
    const access = this.access;
    if (!access || !this.accessActive) return null;
    if (access.reminderAt !== null && now >= access.reminderAt) {
      access.reminderAt = null;
      const reminded = this.transition({ name: 'app.access_request.access.remind' }, now);
      return this.change({ transitions: [reminded], emails: [this.accessEmail('ending', reminded.sequence, access.endsAt)] });
    }
    if (now < access.endsAt) return null;
    return this.endAccess('ENDED', { name: 'app.access_request.access.end', reason: 'the time-bound access ended', unassign: 'ACCESS_ENDED' }, now);
  }

  private endAccess(status: 'ENDED' | 'REVOKED', draft: Draft, now: number, accepted?: Accepted): Change {
    const endsAt = status === 'ENDED' ? (this.access?.endsAt ?? now) : now;
    this.access = null;
    if (this.view.access) this.view.access = { ...this.view.access, status, endsAt: iso(endsAt) };
    const ended = this.transition({ ...draft, accessEndsAt: iso(endsAt) }, now);
    return { transitions: [ended], accepted, emails: [this.accessEmail(status === 'ENDED' ? 'ended' : 'revoked', ended.sequence, endsAt, draft.reason)], end: 'closed' };
  }

  private accessEmail(kind: AccessNotice['kind'], sequence: number, endsAt: number, reason?: string): Email {
    return { to: 'access', notice: { requestId: this.ids.requestId, kind, endsAt: iso(endsAt), sequence, plan: this.plan(), ...(reason ? { reason } : {}) } };
  }

  /** After a directory or configuration change: close the request, or re-route the step. */
  reviewed(verdict: ReviewVerdict, now: number): Change {
    if ('close' in verdict) return this.finish('DELETED', { name: 'app.access_request.delete', reason: verdict.close }, now);
    this.adoptAdmins(verdict);
    const current = this.view.currentApproverIds;
    // The same rule tells a settings preview which requests would be re-routed.
    const approverIds = reroutedTo(verdict, current);
    // Delegation while away: who stands in for whom, as resolved now (histories from before it have none).
    if (this.current && verdict.approverIds) this.current.plan = delegating(this.current.plan, delegatedAmong(verdict.delegatedFrom, verdict.approverIds));
    if (!approverIds) return this.change({});
    const added = approverIds.filter((id) => !current.includes(id));
    this.view.currentApproverIds = [...approverIds];
    approverIds.forEach((id) => this.everyApprover.add(id));
    const delegatedFrom = delegatedAmong(verdict.delegatedFrom, approverIds);
    const rerouted = this.transition(
      { name: 'app.access_request.reroute', step: this.current?.plan.number, currentApproverIds: approverIds, ...(delegatedFrom ? { delegatedFrom } : {}) },
      now,
    );
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
    // A requester who cancels gets no email; a request made on someone's behalf tells both of them.
    if (status !== 'CANCELLED' || this.view.plan?.requestedById) {
      emails.push({
        to: 'outcome',
        notice: {
          requestId: this.ids.requestId,
          outcome: status,
          comment: draft.comment,
          reason: draft.reason,
          actorId: draft.actorId,
          ...(draft.onBehalfOf ? { onBehalfOf: draft.onBehalfOf } : {}),
          approverIds: [...this.everyApprover],
          plan: this.plan(),
          ...(draft.accessEndsAt ? { accessEndsAt: draft.accessEndsAt } : {}),
        },
      });
    }
    return { transitions: [...(also.before ?? []), ending], accepted: also.accepted, emails, end: 'closed' };
  }

  private transition(draft: Draft, now: number): Transition {
    this.sequence += 1;
    const at = iso(now);
    this.view.timeline.push({
      sequence: this.sequence,
      name: draft.name,
      at,
      actorId: draft.actorId,
      step: draft.step,
      comment: draft.comment,
      ...(draft.onBehalfOf ? { onBehalfOf: draft.onBehalfOf } : {}),
    });
    return { requestId: this.ids.requestId, sequence: this.sequence, at, ...draft };
  }

  /** The accepted result of the Kafka command behind a message (an Update from elsewhere has none). */
  private acknowledge(input: { commandId?: string }, type: string, details: Record<string, unknown>): Accepted | undefined {
    const plan = this.view.plan;
    if (!input.commandId || !plan) return undefined;
    return { command: { commandId: input.commandId, type, orgId: plan.orgId }, details: { requestId: this.ids.requestId, workflowId: this.ids.workflowId, ...details } };
  }

  private approversEmail(approverIds: readonly string[], notice: string): Email {
    // Delegates among the recipients are told whom they decide for.
    const delegatedFrom = delegatedAmong(this.current?.plan.delegatedFrom, approverIds);
    return {
      to: 'approvers',
      notice: {
        requestId: this.ids.requestId,
        step: this.current?.plan.number ?? 0,
        approverIds: [...approverIds],
        notice,
        deadline: this.view.stepDeadline ?? '',
        plan: this.plan(),
        ...(delegatedFrom ? { delegatedFrom } : {}),
        ...this.visibleAttributeValues(),
      },
    };
  }

  /** The attribute values set so far that the current step's approvers may see. */
  private visibleAttributeValues(): { attributes?: Record<string, string> } {
    const visible = this.current?.plan.attributes ?? {};
    const values = Object.entries(this.view.attributes ?? {}).filter(([name]) => name in visible);
    return values.length > 0 ? { attributes: Object.fromEntries(values) } : {};
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

/** The step with whom its delegates stand in for (delegation while away); none: the field is left out. */
function delegating(step: StepPlan, delegatedFrom: Record<string, string> | undefined): StepPlan {
  const { delegatedFrom: _before, ...rest } = step;
  return delegatedFrom && Object.keys(delegatedFrom).length > 0 ? { ...rest, delegatedFrom } : rest;
}
