import type { Outcome, RequestPlan, StepPlan } from '../rules/app-request';

/** The text of every app request email. Pure, so wording is tested without sending anything. */

export interface Person {
  id: string;
  email: string;
  displayName: string | null;
}

const nameOf = (person: Person) => person.displayName ?? person.email;

export function approverRequestMail(plan: RequestPlan, step: StepPlan, requester: Person, deadline: string, kind: 'request' | 'reminder') {
  const subject =
    kind === 'reminder'
      ? `Reminder: ${nameOf(requester)} is waiting for your approval of ${plan.appLabel}`
      : `Approval needed: ${nameOf(requester)} requests ${plan.appLabel}`;
  const lines = [
    `${nameOf(requester)} <${requester.email}> requests access to ${plan.appLabel}.`,
    '',
    `Request: ${plan.requestId}`,
    `Step ${step.number} of ${plan.steps.length}`,
    `Decide before: ${deadline}`,
    plan.comment ? `Comment from the requester: ${plan.comment}` : 'The requester left no comment.',
    '',
    'Approve or deny it from your Self Service inbox. If nobody on this step decides in time, the request expires.',
  ];
  return { subject, text: lines.join('\n') };
}

export function outcomeMail(plan: RequestPlan, requester: Person, outcome: Outcome, details: { comment?: string; reason?: string; actorName?: string }) {
  const app = plan.appLabel;
  const who = nameOf(requester);
  switch (outcome) {
    case 'APPROVED':
      return {
        subject: `Approved: ${app} is on ${who}'s dashboard`,
        text: `The request ${plan.requestId} for ${app} by ${who} was approved. ${app} is now on ${who}'s Okta dashboard.`,
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
