import { outboundEvents, type OutboundEvent } from '../events/outbound';
import type { Transition } from '../rules/app-request';
import type { CommandRef } from '../rules/commands';
import { acceptedWrite } from './command-ledger';
import type { Database } from './database';
import { outboxRowsOf } from './outbox';

/**
 * What one decision, action, timer or review did to a request, written by ONE SQL statement: the
 * history rows, the request's new state, the dashboard assignment, the outbox rows and the accepted
 * result of the command that caused it. One round trip on the hot path of every request (a grant, a
 * decision) instead of two transactions of a dozen statements.
 *
 * Idempotent as a whole: a change is written entirely or not at all, so when its first history row
 * exists (a retry after the commit) its transitions are skipped; the accepted result is written unless
 * the ledger has it already.
 */

/** Whose request it is: the workflow holds it in its plan; older workflows do not pass it. */
export interface RequestRef {
  orgId: string;
  appId: string;
  requesterId: string;
}

export interface RequestChange {
  transitions: readonly Transition[];
  accepted?: { command: CommandRef; details: Record<string, unknown> };
  request?: RequestRef;
}

/** The CloudEvent ids of a transition's events: its history event, and the dashboard event of a grant. */
export function transitionEventIds(transition: Pick<Transition, 'requestId' | 'sequence' | 'assign' | 'unassign'>): string[] {
  const base = `${transition.requestId}:${transition.sequence}`;
  return transition.assign || transition.unassign ? [base, `${base}:dashboard`] : [base];
}

/** The request's columns after the transitions, in order (a closing one clears the current step). */
function finalState(transitions: readonly Transition[]): Record<string, unknown> {
  const state: Record<string, unknown> = {};
  for (const transition of transitions) {
    if (transition.status) state.status = transition.status;
    if (transition.currentStep !== undefined) state.currentStep = transition.currentStep;
    if (transition.currentApproverIds) state.currentApproverIds = transition.currentApproverIds;
    if (transition.accessEndsAt) state.accessEndsAt = transition.accessEndsAt;
    if (transition.status !== undefined && transition.status !== 'PENDING') {
      Object.assign(state, { closedAt: transition.at, currentStep: null, currentApproverIds: [], closedReason: transition.reason ?? null });
    }
  }
  return state;
}

function eventsOf(transition: Transition, request: RequestRef): OutboundEvent[] {
  const [historyId, dashboardId] = transitionEventIds(transition);
  const common = { orgId: request.orgId, requestId: transition.requestId, appId: request.appId, requesterId: request.requesterId };
  const time = new Date(transition.at).toISOString();
  const events: OutboundEvent[] = [
    {
      id: historyId!,
      time,
      ...outboundEvents.accessRequest(transition.name, {
        ...common,
        actorId: transition.actorId,
        step: transition.step,
        comment: transition.comment,
        reason: transition.reason,
        ...(transition.name === 'app.access_request.reroute' || transition.name === 'app.access_request.escalate'
          ? { currentApproverIds: transition.currentApproverIds }
          : {}),
        ...(transition.stepDeadline ? { stepDeadline: transition.stepDeadline } : {}),
        ...(transition.onBehalfOf ? { onBehalfOf: transition.onBehalfOf } : {}),
        ...(transition.delegatedFrom ? { delegatedFrom: transition.delegatedFrom } : {}),
        ...(transition.accessEndsAt ? { accessEndsAt: transition.accessEndsAt } : {}),
        ...(transition.extensionRequestId ? { extensionRequestId: transition.extensionRequestId } : {}),
        ...(transition.attributes ? { attributes: transition.attributes } : {}),
        at: transition.at,
      }),
    },
  ];
  const dashboard = { orgId: request.orgId, userId: request.requesterId, appId: request.appId, requestId: transition.requestId };
  if (transition.assign) {
    const timeBound = transition.accessEndsAt ? { grantId: transition.requestId, accessEndsAt: transition.accessEndsAt } : {};
    const attributes = transition.attributes ? { attributes: transition.attributes } : {};
    events.push({ id: dashboardId!, time, ...outboundEvents.appAssigned({ ...dashboard, ...timeBound, ...attributes }) });
  }
  if (transition.unassign) {
    events.push({ id: dashboardId!, time, ...outboundEvents.appUnassigned({ ...dashboard, grantId: transition.requestId, reason: transition.unassign }) });
  }
  return events;
}

async function requestRefOf(db: Database, requestId: string): Promise<RequestRef> {
  const { orgId, appId, requesterId } = await db.appRequest.findUniqueOrThrow({ where: { id: requestId }, select: { orgId: true, appId: true, requesterId: true } });
  return { orgId, appId, requesterId };
}

/**
 * Timestamps are `timestamp(3)` columns in UTC (as Prisma writes them); text with a zone cast to them
 * keeps the UTC wall time. Every outbox row goes in by one INSERT, in order (one NOTIFY for the relay).
 */
const WRITE_CHANGE = `
WITH input AS (SELECT $1::jsonb AS c),
history AS (
  INSERT INTO "AppRequestEvent" ("id", "requestId", "sequence", "name", "actorId", "step", "comment", "data", "at")
  SELECT h->>'id', h->>'requestId', (h->>'sequence')::int, h->>'name', h->>'actorId', (h->>'step')::int, h->>'comment', h->'data', (h->>'at')::timestamp(3)
  FROM input, jsonb_array_elements(input.c->'history') AS h
  ON CONFLICT DO NOTHING
  RETURNING 1
),
fresh AS (SELECT EXISTS (SELECT 1 FROM history) AS yes),
request AS (
  UPDATE "AppRequest" AS r SET
    "status" = COALESCE((change.s->>'status')::"AppRequestStatus", r."status"),
    "currentStep" = CASE WHEN change.s ? 'currentStep' THEN (change.s->>'currentStep')::int ELSE r."currentStep" END,
    "currentApproverIds" = CASE WHEN change.s ? 'currentApproverIds' THEN ARRAY(SELECT jsonb_array_elements_text(change.s->'currentApproverIds')) ELSE r."currentApproverIds" END,
    "closedAt" = CASE WHEN change.s ? 'closedAt' THEN (change.s->>'closedAt')::timestamp(3) ELSE r."closedAt" END,
    "closedReason" = CASE WHEN change.s ? 'closedAt' THEN change.s->>'closedReason' ELSE r."closedReason" END,
    "accessEndsAt" = CASE WHEN change.s ? 'accessEndsAt' THEN (change.s->>'accessEndsAt')::timestamp(3) ELSE r."accessEndsAt" END,
    "updatedAt" = now() AT TIME ZONE 'UTC'
  FROM (SELECT c->>'requestId' AS id, c->'state' AS s FROM input) AS change
  WHERE r."id" = change.id AND (SELECT yes FROM fresh)
  RETURNING 1
),
assignment AS (
  INSERT INTO "AppAssignment" ("orgId", "userId", "appId", "requestId", "attributes")
  SELECT a->>'orgId', a->>'userId', a->>'appId', a->>'requestId', a->'attributes'
  FROM input, jsonb_array_elements(input.c->'assignments') AS a
  WHERE (SELECT yes FROM fresh)
  ON CONFLICT ("userId", "appId") DO NOTHING
  RETURNING 1
),
unassignment AS (
  DELETE FROM "AppAssignment" AS a
  USING (SELECT u FROM input, jsonb_array_elements(input.c->'unassignments') AS u) AS gone
  WHERE a."userId" = gone.u->>'userId' AND a."appId" = gone.u->>'appId' AND a."requestId" = gone.u->>'requestId' AND (SELECT yes FROM fresh)
  RETURNING 1
),
ledger AS (
  INSERT INTO "ProcessedCommand" ("commandId", "commandType", "orgId", "outcome", "result")
  SELECT l->>'commandId', l->>'commandType', l->>'orgId', (l->>'outcome')::"CommandOutcome", l->'result'
  FROM (SELECT c->'ledger' AS l FROM input) AS entry
  WHERE jsonb_typeof(l) = 'object'
  ON CONFLICT ("commandId") DO NOTHING
  RETURNING 1
),
outbox AS (
  INSERT INTO "OutboxEvent" ("id", "topic", "type", "key", "data", "time", "traceparent")
  SELECT e->>'id', e->>'topic', e->>'type', e->>'key', e->'data', (e->>'time')::timestamp(3), e->>'traceparent'
  FROM (
    SELECT e, n FROM input, jsonb_array_elements(input.c->'events') WITH ORDINALITY AS t(e, n) WHERE (SELECT yes FROM fresh)
    UNION ALL
    SELECT e, 1000000 + n FROM input, jsonb_array_elements(input.c->'resultEvents') WITH ORDINALITY AS t(e, n) WHERE EXISTS (SELECT 1 FROM ledger)
  ) AS rows
  ORDER BY n
  RETURNING 1
)
SELECT (SELECT yes FROM fresh) AS "written", (SELECT count(*) FROM request) AS "requests", (SELECT count(*) FROM assignment) AS "assignments", (SELECT count(*) FROM unassignment) AS "unassignments", (SELECT count(*) FROM outbox) AS "events"`;

/** Writes a request change (see above). Returns whether its transitions were new. */
export async function writeRequestChange(db: Database, change: RequestChange): Promise<boolean> {
  const { transitions, accepted } = change;
  if (transitions.length === 0 && !accepted) return false;
  const requestId = transitions[0]?.requestId;
  const request = requestId ? (change.request ?? (await requestRefOf(db, requestId))) : undefined;
  const ledger = accepted ? acceptedWrite(accepted.command, { details: accepted.details }) : undefined;
  const input = {
    requestId,
    history: transitions.map((transition) => ({
      id: `${transition.requestId}:${transition.sequence}`,
      requestId: transition.requestId,
      sequence: transition.sequence,
      name: transition.name,
      actorId: transition.actorId ?? null,
      step: transition.step ?? null,
      comment: transition.comment ?? null,
      // A delegate's decision names the away approver it was made for; a re-route, who stands in for whom.
      data: {
        ...(transition.reason ? { reason: transition.reason } : {}),
        ...(transition.onBehalfOf ? { onBehalfOf: transition.onBehalfOf } : {}),
        ...(transition.delegatedFrom ? { delegatedFrom: transition.delegatedFrom } : {}),
      },
      at: new Date(transition.at).toISOString(),
    })),
    state: finalState(transitions),
    assignments: request
      ? transitions
          .filter((transition) => transition.assign)
          .map((transition) => ({ orgId: request.orgId, userId: request.requesterId, appId: request.appId, requestId: transition.requestId, attributes: transition.attributes ?? null }))
      : [],
    unassignments: request
      ? transitions.filter((transition) => transition.unassign).map((transition) => ({ userId: request.requesterId, appId: request.appId, requestId: transition.requestId }))
      : [],
    events: request ? outboxRowsOf(transitions.flatMap((transition) => eventsOf(transition, request))) : [],
    ledger: ledger?.row ?? null,
    resultEvents: ledger ? outboxRowsOf(ledger.events) : [],
  };
  // A history row of a request that does not exist fails the statement (a foreign key): nothing is written.
  const [row] = await db.$queryRawUnsafe<{ written: boolean }[]>(WRITE_CHANGE, JSON.stringify(input));
  return row?.written ?? false;
}
