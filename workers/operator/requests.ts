import { Client } from '@temporalio/client';
import { findRequests, REQUEST_STATUSES, requestTimeline, type RequestStatusName, type RequestSummary, type TimelineEntry } from '../../activities/operator-views';
import type { RequestView } from '../../rules/app-request';
import { statusQuery } from '../../workflows/app-request-messages';
import { loadConfig } from '../config';
import { dataConverterFor } from '../payload-codec';
import { connectClient } from '../temporal-connection';
import { helpText, parseArgs, positionals, positiveInteger, UsageError, type CliCommand, type CommandSpec } from './args';
import { textTable, withDatabase } from './output';

const findSpec: CommandSpec = {
  name: 'requests find',
  summary: 'find app requests in the database read model by org, requester, approver, app and status',
  details: [
    'Newest first. --approver matches a current approver of a pending step, and whoever decided a step or',
    'overrode the request. Every filter given must match. A table, or one JSON object per request with --json.',
  ],
  options: [
    { name: 'org', value: 'ORG', description: 'requests of this org' },
    { name: 'requester', value: 'USER', description: 'requests made by this user' },
    { name: 'approver', value: 'USER', description: 'requests this user approves now, or decided' },
    { name: 'app', value: 'APP', description: 'requests for this app integration' },
    { name: 'status', value: 'STATUS', description: `one of ${REQUEST_STATUSES.join(', ')}` },
    { name: 'limit', value: 'N', description: 'at most N requests (default 50, at most 10000)' },
    { name: 'json', description: 'one JSON object per line instead of a table' },
  ],
  examples: ['requests find --org org-acme --status PENDING --approver u-bob', 'requests find --requester u-alice --json'],
};

function statusOf(text: string | undefined): RequestStatusName | undefined {
  if (text === undefined) return undefined;
  const status = REQUEST_STATUSES.find((candidate) => candidate === text.toUpperCase());
  if (!status) throw new UsageError(`--status must be one of ${REQUEST_STATUSES.join(', ')}, not ${JSON.stringify(text)}`, helpText(findSpec));
  return status;
}

function requestRow(request: RequestSummary): string[] {
  return [
    request.requestId,
    request.orgId,
    request.appLabel ? `${request.appId} (${request.appLabel})` : request.appId,
    request.requesterId,
    request.status,
    request.currentStep === null ? '-' : String(request.currentStep),
    request.currentApproverIds.join(',') || '-',
    request.createdAt,
  ];
}

export const findRequestsCommand: CliCommand = {
  spec: findSpec,
  async run(args) {
    const parsed = parseArgs(findSpec, args);
    if (parsed.help) {
      console.log(helpText(findSpec));
      return true;
    }
    positionals(findSpec, parsed, []);
    const filter = {
      orgId: parsed.values.get('org'),
      requesterId: parsed.values.get('requester'),
      approverId: parsed.values.get('approver'),
      appId: parsed.values.get('app'),
      status: statusOf(parsed.values.get('status')),
      limit: positiveInteger(findSpec, '--limit', parsed.values.get('limit'), 50, 10_000),
    };
    const requests = await withDatabase((db) => findRequests(db, filter));
    if (parsed.flags.has('json')) {
      for (const request of requests) console.log(JSON.stringify(request));
    } else if (requests.length === 0) {
      console.log('no requests match');
    } else {
      console.log(textTable(['REQUEST', 'ORG', 'APP', 'REQUESTER', 'STATUS', 'STEP', 'APPROVERS', 'CREATED'], requests.map(requestRow)));
    }
    return true;
  },
};

const timelineSpec: CommandSpec = {
  name: 'requests timeline',
  args: '<requestId>',
  summary: "a request's lifecycle in time order, from the database",
  details: [
    'Merges what the database keeps about the request: its history (request, decisions, re-routes, reminders,',
    'grant or closing), the commands that named it and their results, the audit entries about it (refused',
    'admin attempts too), the outbound events written for it (published, or still waiting for the relay) and the',
    "emails sent about it. --live also asks the request's workflow (its status Query) for its state now:",
    'current step, approvers and deadline.',
  ],
  options: [
    { name: 'live', description: "also ask the workflow's status Query (needs Temporal and a running worker)" },
    { name: 'json', description: 'one JSON object {request, entries, live?} instead of text' },
  ],
  examples: ['requests timeline req-5f1c0a9e2b7d4c3a1e0f9b8d', 'requests timeline req-5f1c0a9e2b7d4c3a1e0f9b8d --live --json'],
};

function detailText(detail: Record<string, unknown>): string {
  return Object.entries(detail)
    .map(([key, value]) => {
      if (typeof value !== 'string') return `${key}=${JSON.stringify(value)}`;
      return `${key}=${/^[^\s"=]+$/.test(value) ? value : JSON.stringify(value)}`;
    })
    .join(' ');
}

function timelineRow(entry: TimelineEntry): string[] {
  return [entry.at, entry.source, entry.what, entry.actorId ?? '-', detailText(entry.detail)];
}

/** The workflow's own view now, or why it cannot be had; bounded to 10 s. */
async function liveView(workflowId: string): Promise<{ view?: RequestView; error?: string }> {
  const config = loadConfig();
  let connection: Awaited<ReturnType<typeof connectClient>> | undefined;
  try {
    connection = await connectClient(config);
    const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE, dataConverter: dataConverterFor(config) });
    const view = await connection.withDeadline(Date.now() + 10_000, () => client.workflow.getHandle(workflowId).query(statusQuery));
    return { view };
  } catch (error) {
    return { error: `${(error as Error).name}: ${(error as Error).message}` };
  } finally {
    await connection?.close();
  }
}

function liveText(live: { view?: RequestView; error?: string }): string {
  if (!live.view) return `live: not available (${live.error})`;
  const { status, currentStep, currentApproverIds, stepDeadline, plan } = live.view;
  const step = currentStep === null ? '' : `, step ${currentStep} of ${plan?.steps.length ?? '?'}, approvers ${currentApproverIds.join(',') || '-'}, deadline ${stepDeadline ?? '-'}`;
  return `live: ${status}${step}`;
}

export const requestTimelineCommand: CliCommand = {
  spec: timelineSpec,
  async run(args) {
    const parsed = parseArgs(timelineSpec, args);
    if (parsed.help) {
      console.log(helpText(timelineSpec));
      return true;
    }
    const [requestId] = positionals(timelineSpec, parsed, ['a requestId']);
    const timeline = await withDatabase((db) => requestTimeline(db, requestId!));
    if (!timeline) {
      console.error(`no request ${requestId} in the database`);
      return false;
    }
    const live = parsed.flags.has('live') ? await liveView(timeline.request.workflowId) : undefined;
    if (parsed.flags.has('json')) {
      console.log(JSON.stringify({ ...timeline, ...(live ? { live: live.view ?? { error: live.error } } : {}) }));
      return true;
    }
    const { request } = timeline;
    console.log(
      `request ${request.requestId}  org ${request.orgId}  app ${request.appLabel ? `${request.appId} (${request.appLabel})` : request.appId}  requester ${request.requesterId}`,
    );
    const step = request.currentStep === null ? '' : `, step ${request.currentStep}, approvers ${request.currentApproverIds.join(',') || '-'}`;
    const closed = request.closedAt ? `, closed ${request.closedAt}${request.closedReason ? ` (${request.closedReason})` : ''}` : '';
    console.log(`status ${request.status}${step}${closed}; workflow ${request.workflowId}`);
    if (live) console.log(liveText(live));
    console.log('');
    console.log(textTable(['TIME', 'SOURCE', 'WHAT', 'ACTOR', 'DETAIL'], timeline.entries.map(timelineRow)));
    return true;
  },
};
