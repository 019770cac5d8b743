import { createHash } from 'node:crypto';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
  type WorkflowHandle,
} from '@temporalio/client';
import { ApplicationFailure, TypedSearchAttributes } from '@temporalio/common';
import { requestsAffectedByAll } from '../activities/affected-requests';
import { hasResult, recordCommandBatch, recordFailed, recordRejected, releaseEvents, type BatchEntry, type BatchRecord } from '../activities/command-ledger';
import type { Database } from '../activities/database';
import type { Command } from '../events/inbound';
import { appRequestWorkflowId } from '../rules/app-request';
import { commandRef, type AuditDraft, type CommandResult } from '../rules/commands';
import { reviewSignal } from '../workflows/app-request';
import { SelfServiceCommandType, SelfServiceOrgId } from '../workflows/search-attributes';
import { orgOf, routeOf, type ApplyRoute, type UpdateRoute, type WorkflowRoute } from './command-catalog';
import { commandIds } from './command-ids';
import type { CommandRouter, RouteContext } from './ingress';
import type { LogLine } from './logger';

export interface TemporalRouterOptions {
  client: Client;
  db: Database;
  taskQueue: string;
  /** True for a failure that waiting can cure; anything else is the command's own (permanent) fault. */
  isTransient(error: unknown): boolean;
  /** Log lines (the process's logger); the router binds each to its command's ids. */
  log?: LogLine;
}

const HEARTBEAT_MS = 3000;

/**
 * Waits for `work`, heartbeating meanwhile so that the consumer keeps its partitions; a wait is never
 * longer than `timeoutMs`, after which a transient error is thrown and the ingress tries again.
 */
async function heartbeating<T>(work: Promise<T>, context: RouteContext, timeoutMs: number, what: string): Promise<T> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    for (;;) {
      const tick = new Promise<'tick'>((resolve) => {
        timer = setTimeout(() => resolve('tick'), HEARTBEAT_MS);
      });
      const outcome = await Promise.race([work.then((value) => ({ value })), tick]);
      clearTimeout(timer);
      if (outcome !== 'tick') return outcome.value;
      if (Date.now() - started > timeoutMs) throw new CommandWaitTimeout(`${what} did not finish within ${Math.round(timeoutMs / 1000)} s`);
      await context.heartbeat();
    }
  } finally {
    clearTimeout(timer);
    work.catch(() => undefined);
  }
}

/** A wait that ran out: transient (the worker or a service is slow or down), the ingress tries again. */
export class CommandWaitTimeout extends Error {
  override readonly name = 'CommandWaitTimeout';
  readonly code = 'ETIMEDOUT';
}

/** Outside the ingress (the CLI's import, the benchmark): nothing to keep alive. */
const QUIET: RouteContext = { repeat: false, heartbeat: async () => undefined };

/** How long the ingress waits for one Update before it asks again. */
const WAIT_TIMEOUT_MS = 60_000;

/** How many signals go out at once when a change affects many pending requests. */
const SIGNALS_AT_ONCE = 64;

/**
 * Carries commands out as the catalog routes them. Workflow ids come from the command's CloudEvent id,
 * so a redelivered command finds its existing workflow instead of starting a second one; Updates carry
 * the command id as their update id, so a redelivered decision is not applied twice; applied commands
 * are recorded once in the ledger, which gives a redelivery the stored result.
 */
export class TemporalCommandRouter implements CommandRouter {
  constructor(private readonly options: TemporalRouterOptions) {}

  async route(command: Command, context: RouteContext): Promise<void> {
    const route = routeOf(command);
    switch (route.kind) {
      case 'apply':
        await this.apply([command], context);
        return;
      case 'workflow':
        if (context.repeat && (await this.finishedLongAgo(command, route))) return;
        await this.start(command, route);
        return;
      case 'update':
        await this.updateRequest(command, route, context);
        return;
    }
  }

  /** How the command is carried out: the ingress groups neighbours of the same kind. */
  kindOf(command: Command): 'apply' | 'workflow' | 'update' {
    return routeOf(command).kind;
  }

  /**
   * Applies one-transaction commands (directory, settings, per-app configuration), all in one database
   * transaction, in order. The pending requests they affect are signalled to review themselves before
   * the commands' events, held until then, go out.
   */
  async apply(commands: readonly Command[], context: RouteContext = QUIET): Promise<CommandResult[]> {
    const entries = commands.map((command) => {
      const route = routeOf(command) as ApplyRoute<Command>;
      return { command, handler: route.handler, many: route.many } as BatchEntry;
    });
    let records: BatchRecord[];
    try {
      records = await recordCommandBatch(this.options.db, entries, {
        affectedBy: requestsAffectedByAll,
        isTransient: this.options.isTransient,
        incident: (command, error) => this.incident(command, error),
      });
    } catch (error) {
      if (this.options.isTransient(error)) throw error;
      // The group's ledger writes were refused (data no store accepts): each command on its own, so
      // that only the one at fault ends with INTERNAL_ERROR.
      if (commands.length > 1) {
        const results: CommandResult[] = [];
        for (const command of commands) results.push(...(await this.apply([command], context)));
        return results;
      }
      return [await recordFailed(this.options.db, commands[0]!, this.incident(commands[0]!, error))];
    }
    // Workflows that carry applied commands on in time (a delegation's), before their events go out.
    const follows = commands.flatMap((command, index) => {
      const { follow } = routeOf(command) as ApplyRoute<Command>;
      const result = records[index]?.result;
      return follow && result ? [follow(this.options.client, command, result, { taskQueue: this.options.taskQueue })] : [];
    });
    if (follows.length > 0) await heartbeating(Promise.all(follows), context, WAIT_TIMEOUT_MS, `starting the workflows of ${follows.length} applied commands`);
    const affected = new Set(records.flatMap((record) => record.affected));
    if (affected.size > 0) {
      await heartbeating(this.signalReview([...affected]), context, WAIT_TIMEOUT_MS, `telling ${affected.size} pending requests of a change`);
      await releaseEvents(this.options.db, records.filter((record) => record.affected.length > 0).flatMap((record) => record.result.eventIds));
    }
    return records.map((record) => record.result);
  }

  /** Names a permanent failure of one command in one log line (no payload), for its INTERNAL_ERROR result. */
  private incident(command: Command, error: unknown): string {
    const incidentId = `inc-${createHash('sha256').update(`${command.commandId}:${Date.now()}:${Math.random()}`).digest('hex').slice(0, 16)}`;
    const reason = error instanceof Error ? `${error.name}: ${error.message}`.slice(0, 500) : 'unknown error';
    this.options.log?.(`incident ${incidentId}: command ${command.commandId} (${command.type}) failed permanently: ${reason}`, { ...commandIds(command), incidentId });
    return incidentId;
  }

  private async signalReview(workflowIds: string[]): Promise<void> {
    for (let from = 0; from < workflowIds.length; from += SIGNALS_AT_ONCE) {
      await Promise.all(
        workflowIds.slice(from, from + SIGNALS_AT_ONCE).map(async (workflowId) => {
          try {
            await this.options.client.workflow.getHandle(workflowId).signal(reviewSignal);
          } catch (error) {
            // The request ended meanwhile: nothing to review.
            if (!(error instanceof WorkflowNotFoundError)) throw error;
          }
        }),
      );
    }
  }

  /** Starts the command's workflow unless it already exists (running or finished). */
  private async start<C extends Command>(command: C, route: WorkflowRoute<C>): Promise<void> {
    const orgId = orgOf(command);
    try {
      await route.start(this.options.client, command, {
        taskQueue: this.options.taskQueue,
        workflowId: route.workflowId(command),
        searchAttributes: new TypedSearchAttributes([
          { key: SelfServiceCommandType, value: command.type },
          ...(orgId ? [{ key: SelfServiceOrgId, value: orgId }] : []),
        ]),
      });
    } catch (error) {
      if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
    }
  }

  /**
   * A repeated command whose workflow is gone although its result is recorded: it ran to its end and
   * Temporal has since dropped the history (Kafka keeps records longer). Starting it again would
   * re-open a closed request, so it is left alone.
   */
  private async finishedLongAgo<C extends Command>(command: C, route: WorkflowRoute<C>): Promise<boolean> {
    const state = await describe(this.options.client.workflow.getHandle(route.workflowId(command)));
    return state === 'missing' && (await hasResult(this.options.db, command.commandId));
  }

  /**
   * Delivers a decision, cancellation or admin action to the request's workflow. The workflow records
   * the accepted result; a refusal (the Update's validator or handler said no, or there is no such
   * pending request) is recorded here.
   */
  private async updateRequest<C extends Command>(command: C, route: UpdateRoute<C>, context: RouteContext): Promise<void> {
    const requestId = route.requestId(command);
    const handle = this.options.client.workflow.getHandle(appRequestWorkflowId(requestId));
    try {
      await heartbeating(route.execute(handle, command), context, WAIT_TIMEOUT_MS, `update ${command.commandId}`);
    } catch (error) {
      const refusal = error instanceof WorkflowUpdateFailedError ? applicationFailureIn(error) : null;
      if (refusal) {
        await this.reject(command, refusal.type ?? 'REJECTED', refusal.message, refusalAudit(command, refusal.type ?? 'REJECTED'));
        return;
      }
      const state = await describe(handle);
      if (state === 'missing') {
        await this.reject(command, 'REQUEST_NOT_FOUND', `there is no request ${requestId}`);
        return;
      }
      if (state === 'closed') {
        await this.reject(command, 'REQUEST_NOT_PENDING', `request ${requestId} has ended`);
        return;
      }
      throw error;
    }
  }

  private async reject(command: Command, code: string, message: string, audit?: AuditDraft): Promise<void> {
    await recordRejected(this.options.db, commandRef(command), code, message, audit);
  }
}

/** An admin action that was refused is audited, as every admin attempt is. */
function refusalAudit(command: Command, code: string): AuditDraft | undefined {
  if (command.type !== 'selfservice.app-request.admin-action.v1' || code === 'REQUEST_NOT_FOUND') return undefined;
  const { orgId, actorId, action, requestId } = command.data;
  return { orgId, actorId, action: `app-request.${action.toLowerCase()}`, subject: requestId };
}

/** The business refusal behind an update failure (it may be wrapped in an activity failure). */
function applicationFailureIn(error: Error): ApplicationFailure | null {
  for (let cause: unknown = error.cause; cause instanceof Error; cause = cause.cause) {
    if (cause instanceof ApplicationFailure) return cause;
  }
  return null;
}

async function describe(handle: WorkflowHandle): Promise<'missing' | 'closed' | 'running'> {
  try {
    const description = await handle.describe();
    return description.status.name === 'RUNNING' ? 'running' : 'closed';
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return 'missing';
    throw error;
  }
}
