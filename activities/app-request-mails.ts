import type { Outcome, RequestPlan, StepPlan } from '../rules/app-request';

/** The text of every app request email. Pure, so wording is tested without sending anything. */

export interface Person {
  id: string;
  email: string;
  displayName: string | null;
}

const nameOf = (person: Person) => person.displayName ?? person.email;
const capitalized = (text: string) => text.charAt(0).toUpperCase() + text.slice(1);

export type ApproverMailKind = 'request' | 'reminder' | 'escalation';

/** The kind of mail an approvers' notice is (request, reminder, resend-2, reroute-3, escalation, escalation-reminder). */
export function approverMailKind(notice: string): ApproverMailKind {
  if (notice === 'escalation') return 'escalation';
  return notice.endsWith('reminder') ? 'reminder' : 'request';
}

/**
 * `askedBy`: the manager who asked on the requester's behalf (the plan's `requestedById`), named in the
 * subject and the text; the requester's comment is then theirs, and a justification is called one.
 * `standsInFor`: the approver who is away and named the recipient their delegate; the recipient
 * decides on their behalf, which subject and text say.
 */
export function approverRequestMail(
  plan: RequestPlan,
  step: StepPlan,
  requester: Person,
  deadline: string,
  kind: ApproverMailKind,
  askedBy?: Person | null,
  standsInFor?: Person | null,
  values: Record<string, string> = {},
) {
  const asks = askedBy ? `${nameOf(askedBy)} requests ${plan.appLabel} for ${nameOf(requester)}` : `${nameOf(requester)} requests ${plan.appLabel}`;
  const commentBy = askedBy ? 'the manager who asked' : 'the requester';
  const onBehalf = standsInFor ? ` (on behalf of ${nameOf(standsInFor)})` : '';
  const subject =
    kind === 'reminder'
      ? `Reminder: ${nameOf(requester)} is waiting for your approval of ${plan.appLabel}${onBehalf}`
      : kind === 'escalation'
        ? `Escalated to you: ${asks}${onBehalf}`
        : `Approval needed: ${asks}${onBehalf}`;
  const lines = [
    `${nameOf(requester)} <${requester.email}> requests access to ${plan.appLabel}.`,
    ...(askedBy ? [`Requested by ${nameOf(askedBy)} <${askedBy.email}>, their manager, on their behalf.`] : []),
    ...(kind === 'escalation' ? [`Nobody on step ${step.number} decided in time, so the request was escalated to you.`] : []),
    ...(standsInFor
      ? [`You decide on behalf of ${nameOf(standsInFor)} <${standsInFor.email}>, who is away and named you their delegate.`]
      : []),
    '',
    `Request: ${plan.requestId}`,
    `Step ${step.number} of ${plan.steps.length}`,
    `Decide before: ${deadline}`,
    plan.comment ? `${plan.justificationRequired ? 'Justification' : 'Comment'} from ${commentBy}: ${plan.comment}` : `${capitalized(commentBy)} left no comment.`,
    ...attributeLines(plan, step, values),
    '',
    'Approve or deny it from your Self Service inbox. If nobody on this step decides in time, the request expires.',
  ];
  return { subject, text: lines.join('\n') };
}

/** The app user attributes this step's approvers see (READ) or may set (WRITE), with their values so far; hidden ones are not named. */
function attributeLines(plan: RequestPlan, step: StepPlan, values: Record<string, string>): string[] {
  const visible = Object.entries(step.attributes ?? {});
  if (visible.length === 0) return [];
  const required = new Set((plan.appUserAttributes ?? []).filter((attribute) => attribute.required).map((attribute) => attribute.name));
  return [
    'App user attributes:',
    ...visible.map(([name, access]) => `  ${name}: ${values[name] ?? '(not set)'}${access === 'WRITE' ? ` (you may set it${required.has(name) ? '; required before the grant' : ''})` : ''}`),
  ];
}

/**
 * `details.askedByName`: the manager who asked on the requester's behalf; the mail goes to both, and
 * names the requester with who asked.
 */
export function outcomeMail(
  plan: RequestPlan,
  requester: Person,
  outcome: Outcome,
  details: { comment?: string; reason?: string; actorName?: string; askedByName?: string; accessEndsAt?: string },
) {
  const app = plan.appLabel;
  const who = details.askedByName ? `${nameOf(requester)} (requested by ${details.askedByName})` : nameOf(requester);
  switch (outcome) {
    case 'APPROVED':
      if (plan.extendsRequestId) {
        return {
          subject: `Extended: ${nameOf(requester)}'s access to ${app}`,
          text: `The extension ${plan.requestId} of ${nameOf(requester)}'s access to ${app} (grant ${plan.extendsRequestId}) was approved: the access now lasts ${plan.access?.days ?? 0} days from today, or until it would have ended if that is later.`,
        };
      }
      if (details.accessEndsAt) {
        return {
          subject: `Approved: ${app} is on ${nameOf(requester)}'s dashboard until ${details.accessEndsAt.slice(0, 10)}`,
          text: `The request ${plan.requestId} for ${app} by ${who} was approved. ${app} is now on ${nameOf(requester)}'s Okta dashboard until ${details.accessEndsAt} (UTC); ask for an extension before then to keep it.`,
        };
      }
      return {
        subject: `Approved: ${app} is on ${nameOf(requester)}'s dashboard`,
        text: `The request ${plan.requestId} for ${app} by ${who} was approved. ${app} is now on ${nameOf(requester)}'s Okta dashboard.`,
      };
    case 'DENIED':
      return {
        subject: `Denied: the request for ${app}`,
        text: [
          `The request ${plan.requestId} for ${app} by ${who} was denied${details.actorName ? ` by ${details.actorName}` : ''}.`,
          details.comment ? `Comment from the approver: ${details.comment}` : 'The approver left no comment.',
        ].join('\n'),
      };
    case 'EXPIRED':
      return {
        subject: `Expired: the request for ${app}`,
        text: `Nobody decided the request ${plan.requestId} for ${app} by ${who} in time, so it expired. You can request the app again.`,
      };
    case 'DELETED':
      return {
        subject: `Closed: the request for ${app}`,
        text: `The request ${plan.requestId} for ${app} by ${who} was closed without a decision.\nReason: ${details.reason ?? 'closed by an administrator'}`,
      };
    case 'CANCELLED':
      return {
        subject: `Cancelled: the request for ${app}`,
        text: `The request ${plan.requestId} for ${app} by ${who} was cancelled.`,
      };
  }
}

/**
 * To the requester of record when their manager asked for an app on their behalf and it waits for
 * approval: someone asked in their name, and they may cancel it.
 */
export function requestedForYouMail(plan: RequestPlan, askedBy: Person) {
  const lines = [
    `${nameOf(askedBy)} <${askedBy.email}>, your manager, requested access to ${plan.appLabel} for you.`,
    '',
    `Request: ${plan.requestId}`,
    ...(plan.comment ? [`${plan.justificationRequired ? 'Justification' : 'Comment'}: ${plan.comment}`] : []),
    '',
    `It now waits for approval. If you do not need ${plan.appLabel}, cancel the request from your Self Service inbox.`,
  ];
  return { subject: `${nameOf(askedBy)} requested ${plan.appLabel} for you`, text: lines.join('\n') };
}

/** The emails of a time-bound grant's life, to the user whose access it is. */
export function accessMail(plan: RequestPlan, user: Person, kind: 'ending' | 'ended' | 'revoked', endsAt: string, reason?: string) {
  const app = plan.appLabel;
  switch (kind) {
    case 'ending':
      return {
        subject: `Ending soon: your access to ${app}`,
        text: `Your access to ${app} (grant ${plan.requestId}) ends on ${endsAt} (UTC). To keep it, request an extension of grant ${plan.requestId} before then.`,
      };
    case 'ended':
      return {
        subject: `Ended: your access to ${app}`,
        text: `Your time-bound access to ${app} (grant ${plan.requestId}) ended on ${endsAt} (UTC), and ${app} was taken off your dashboard. Request it again if you still need it.`,
      };
    case 'revoked':
      return {
        subject: `Revoked: your access to ${app}`,
        text: `An administrator ended your access to ${app} (grant ${plan.requestId}) early, and ${app} was taken off your dashboard.\nReason: ${reason ?? 'none given'}`,
      };
  }
}
