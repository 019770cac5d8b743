import type { Client } from 'pg';
import { appRequestWorkflowId } from '../../rules/app-request';
import type { CommandSender } from './command-sender';
import type { Announced, EventLog } from './event-log';
import type { FaultWindow } from './faults';
import { noticeKey, type ReceivedMail } from './mailbox';
import type { ChaosOrg, RoundApps } from './org';
import type { TrackedRequest } from './request-load';

/** What one fault round did to the work: the numbers of the report. */
export interface RoundFindings {
  fault: string;
  description: string;
  requests: number;
  approvalRequests: number;
  commands: number;
  /** Commands (requests and decisions) without any result on selfservice.command-results.v1. */
  lostResults: number;
  /** Commands with two different results (different result ids, or accepted and rejected). */
  doubledResults: number;
  /** Requests whose app was put on the dashboard twice (two app-assigned ids, two grants, two rows). */
  grantedTwice: number;
  /** Requests never granted: no app-assigned event, or no AppAssignment row. */
  grantedNever: number;
  /** Notices received under two or more different Message-IDs. */
  emailsDoubled: number;
  /** Expected notices (the requester's outcome, the approver's request) never received. */
  emailsMissing: number;
  /** Extra copies with a Message-ID already received (the retry after a crash; README "Known limits"). */
  emailCopiesSameMessageId: number;
  /** Seconds from the end of the fault to the first command result or dashboard event sent after it. */
  resumeSeconds: number | null;
  /**
   * Seconds from the end of the fault to the first result of a command sent after the fault began: new
   * work through the whole path (Kafka, ingress, Temporal, worker, database). 0 when such work was done
   * even before the fault ended; null when no command was sent after the fault began.
   */
  newWorkSeconds: number | null;
  /**
   * Seconds from the end of the fault to the first hand-over to Temporal (request workflow started) of
   * a request sent after the fault began: Kafka, the ingress and Temporal all working again. 0 when it
   * happened before the fault ended; null when no request was sent after the fault began.
   */
  handoverSeconds: number | null;
  /** Seconds from the end of the fault to the first email Mailpit received after it. */
  mailResumeSeconds: number | null;
  /** Work not finished when the fault ended (requests not granted, commands without a result). */
  pendingAtFaultEnd: number;
  /** Seconds from the first request to the moment every request was granted (null: never). */
  roundSeconds: number | null;
  decisionsResent: number;
  resentCodes: Record<string, number>;
  commandSendRetries: number;
  rejections: Record<string, number>;
  fault_window: { startedAt: string; endedAt: string; seconds: number; notes: string[] };
  examples: string[];
}

const APP_ASSIGNED = 'selfservice.dashboard.app-assigned.v1';

/** The emails of a round: to the org's people, about one of the round's apps (app labels are unique per round). */
export function roundMails(mails: ReceivedMail[], org: ChaosOrg, apps: RoundApps): ReceivedMail[] {
  return mails.filter(
    (mail) =>
      (mail.Subject.includes(apps.autoAppLabel) || mail.Subject.includes(apps.approvalAppLabel)) &&
      mail.To.some((to) => to.Address.toLowerCase().endsWith(`@${org.domain}`)),
  );
}

function count<T>(items: Iterable<T>, key: (item: T) => string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return counts;
}

export interface RoundInput {
  org: ChaosOrg;
  apps: RoundApps;
  fault: string;
  description: string;
  window: FaultWindow;
  requests: TrackedRequest[];
  /** Start time of each request workflow, by workflow id. */
  workflowStarts: Map<string, number>;
  loadStartedAt: number;
  completedAt: number | null;
}

const ofApps = (apps: RoundApps) => (record: Announced) => record.data.appId === apps.autoAppId || record.data.appId === apps.approvalAppId;

/** Work of a round still open at `at`: requests without an app-assigned event, commands without a result. */
export function openWork(input: Pick<RoundInput, 'requests' | 'apps'>, commands: CommandSender, events: EventLog, at: number): number {
  const mine = ofApps(input.apps);
  const grantedBefore = new Set(
    events.records.filter((r) => r.type === APP_ASSIGNED && r.sentAt < at && mine(r)).map((r) => String(r.data.requestId)),
  );
  const ungranted = input.requests.filter((request) => !grantedBefore.has(request.requestId)).length;
  const unanswered = [...commands.sent.values()].filter(
    (command) => command.round === input.apps.round && command.sentAt < at && !commands.resultsOf(command.id).some((result) => result.sentAt < at),
  ).length;
  return ungranted + unanswered;
}

export async function auditRound(
  input: RoundInput,
  commands: CommandSender,
  events: EventLog,
  db: Client,
  mails: ReceivedMail[],
): Promise<RoundFindings> {
  const { org, apps, requests, window } = input;
  const mine = ofApps(apps);
  const appIds = [apps.autoAppId, apps.approvalAppId];
  const examples: string[] = [];
  const example = (text: string) => {
    if (examples.length < 12) examples.push(text);
  };

  // Results: exactly one per command (copies of the same result id are redeliveries).
  const roundCommands = [...commands.sent.values()].filter((command) => command.round === apps.round);
  let lostResults = 0;
  let doubledResults = 0;
  const rejections: Record<string, number> = {};
  for (const command of roundCommands) {
    const results = commands.resultsOf(command.id);
    const ids = new Set(results.map((result) => result.id));
    const types = new Set(results.map((result) => result.type));
    if (results.length === 0) {
      lostResults += 1;
      example(`no result for ${command.type} ${command.id} (sent ${new Date(command.sentAt).toISOString()})`);
    } else if (ids.size > 1 || types.size > 1) {
      doubledResults += 1;
      example(`two results for ${command.type} ${command.id}: ${[...ids].join(', ')} (${[...types].join(', ')})`);
    }
    for (const result of results.slice(0, 1)) {
      if (result.type === 'selfservice.command.rejected.v1') {
        const code = `${command.type.replace(/^selfservice\./, '').replace(/\.v1$/, '')}: ${String(result.data.code)}`;
        rejections[code] = (rejections[code] ?? 0) + 1;
      }
    }
  }

  // Grants: the dashboard events (by CloudEvent id), and the rows in the database.
  const assigned = events.records.filter((record) => record.type === APP_ASSIGNED && mine(record));
  const assignmentIds = new Map<string, Set<string>>();
  for (const record of assigned) {
    const key = `${String(record.data.userId)}|${String(record.data.appId)}`;
    assignmentIds.set(key, (assignmentIds.get(key) ?? new Set()).add(record.id));
  }
  const rows = await db.query<{ userId: string; appId: string; n: string }>(
    'SELECT "userId", "appId", count(*) AS n FROM "AppAssignment" WHERE "appId" = ANY($1) GROUP BY 1, 2',
    [appIds],
  );
  const rowCount = new Map(rows.rows.map((row) => [`${row.userId}|${row.appId}`, Number(row.n)]));
  const grantRows = await db.query<{ requestId: string; n: string }>(
    `SELECT e."requestId", count(*) AS n FROM "AppRequestEvent" e JOIN "AppRequest" r ON r."id" = e."requestId"
      WHERE r."appId" = ANY($1) AND e."name" = 'app.access_request.grant' GROUP BY 1`,
    [appIds],
  );
  const grantCount = new Map(grantRows.rows.map((row) => [row.requestId, Number(row.n)]));
  const requestRows = await db.query<{ requesterId: string; appId: string; n: string }>(
    'SELECT "requesterId", "appId", count(*) AS n FROM "AppRequest" WHERE "appId" = ANY($1) GROUP BY 1, 2',
    [appIds],
  );
  const requestCount = new Map(requestRows.rows.map((row) => [`${row.requesterId}|${row.appId}`, Number(row.n)]));

  let grantedTwice = 0;
  let grantedNever = 0;
  for (const request of requests) {
    const key = `${request.userId}|${request.appId}`;
    const eventIds = assignmentIds.get(key) ?? new Set<string>();
    const dbRows = rowCount.get(key) ?? 0;
    const grants = grantCount.get(request.requestId) ?? 0;
    const requestRowsForUser = requestCount.get(key) ?? 0;
    if (eventIds.size > 1 || dbRows > 1 || grants > 1 || requestRowsForUser > 1) {
      grantedTwice += 1;
      example(`${request.requestId} (${request.userId}) granted twice: ${eventIds.size} app-assigned ids [${[...eventIds].join(', ')}], ${dbRows} assignment rows, ${grants} grant events, ${requestRowsForUser} request rows`);
    } else if (eventIds.size === 0 || dbRows === 0) {
      grantedNever += 1;
      example(`${request.requestId} (${request.userId}, ${request.needsApproval ? 'approval' : 'auto'}) never granted: ${eventIds.size} app-assigned events, ${dbRows} assignment rows, ${grants} grant events`);
    }
  }

  // Emails about this round's apps: one Message-ID per notice; copies with the same Message-ID are told apart.
  const orgMails = roundMails(mails, org, apps);
  const byNotice = new Map<string, ReceivedMail[]>();
  for (const mail of orgMails) byNotice.set(noticeKey(mail), [...(byNotice.get(noticeKey(mail)) ?? []), mail]);
  let emailsDoubled = 0;
  let emailCopiesSameMessageId = 0;
  for (const [notice, received] of byNotice) {
    const messageIds = count(received, (mail) => mail.MessageID);
    if (messageIds.size > 1) {
      emailsDoubled += 1;
      example(`email "${notice}" received ${received.length} times with ${messageIds.size} different Message-IDs`);
    }
    for (const copies of messageIds.values()) emailCopiesSameMessageId += copies - 1;
  }
  let emailsMissing = 0;
  const approverEmail = org.email(org.approverId).toLowerCase();
  const approverSubjects = orgMails.filter((mail) => mail.To.some((to) => to.Address.toLowerCase() === approverEmail)).map((mail) => mail.Subject);
  for (const request of requests) {
    const requesterEmail = org.email(request.userId).toLowerCase();
    const label = request.needsApproval ? apps.approvalAppLabel : apps.autoAppLabel;
    if (!orgMails.some((mail) => mail.Subject.includes(label) && mail.To.some((to) => to.Address.toLowerCase() === requesterEmail))) {
      emailsMissing += 1;
      example(`no outcome email to ${request.userId} (${request.requestId})`);
    }
    if (request.needsApproval && !approverSubjects.some((subject) => subject.includes(org.displayName(request.userId)))) {
      emailsMissing += 1;
      example(`no approver email for ${request.userId} (${request.requestId})`);
    }
  }

  const pendingAtFaultEnd = openWork(input, commands, events, window.endedAt);
  const roundCommandIds = new Set(roundCommands.map((command) => command.id));
  const progress = events.firstProgressSince(
    window.endedAt,
    (record) => roundCommandIds.has(String(record.data.commandId)) || (record.type === APP_ASSIGNED && mine(record)),
  );
  const resumeSeconds = progress ? (progress.sentAt - window.endedAt) / 1000 : null;
  const newWork = roundCommands
    .filter((command) => command.sentAt >= window.startedAt)
    .map((command) => Math.min(...commands.resultsOf(command.id).map((result) => result.sentAt)))
    .filter(Number.isFinite);
  const newWorkSeconds = newWork.length > 0 ? Math.max(0, Math.min(...newWork) - window.endedAt) / 1000 : null;
  const handovers = requests
    .filter((request) => (commands.sent.get(request.commandId)?.sentAt ?? 0) >= window.startedAt)
    .map((request) => input.workflowStarts.get(appRequestWorkflowId(request.requestId)))
    .filter((start): start is number => start !== undefined);
  const handoverSeconds = handovers.length > 0 ? Math.max(0, Math.min(...handovers) - window.endedAt) / 1000 : null;
  const mailAfter = orgMails.map((mail) => Date.parse(mail.Created)).filter((created) => created >= window.endedAt);
  const mailResumeSeconds = mailAfter.length > 0 ? (Math.min(...mailAfter) - window.endedAt) / 1000 : null;

  for (const request of requests) {
    for (const refusal of request.refusals) example(`decision for ${request.requestId} (${request.userId}) refused, sent again: ${refusal}`);
  }
  const resentCodes: Record<string, number> = {};
  for (const code of requests.flatMap((request) => request.refusedDecisions)) resentCodes[code] = (resentCodes[code] ?? 0) + 1;

  return {
    fault: input.fault,
    description: input.description,
    requests: requests.length,
    approvalRequests: requests.filter((request) => request.needsApproval).length,
    commands: roundCommands.length,
    lostResults,
    doubledResults,
    grantedTwice,
    grantedNever,
    emailsDoubled,
    emailsMissing,
    emailCopiesSameMessageId,
    resumeSeconds,
    newWorkSeconds,
    handoverSeconds,
    mailResumeSeconds,
    pendingAtFaultEnd,
    roundSeconds: input.completedAt ? (input.completedAt - input.loadStartedAt) / 1000 : null,
    decisionsResent: requests.reduce((sum, request) => sum + request.refusedDecisions.length, 0),
    resentCodes,
    commandSendRetries: roundCommands.reduce((sum, command) => sum + command.attempts - 1, 0),
    rejections,
    fault_window: {
      startedAt: new Date(window.startedAt).toISOString(),
      endedAt: new Date(window.endedAt).toISOString(),
      seconds: (window.endedAt - window.startedAt) / 1000,
      notes: window.notes,
    },
    examples,
  };
}
