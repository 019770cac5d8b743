import { WorkflowExecutionAlreadyStartedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { TypedSearchAttributes, type UpdateDefinition, type Workflow } from '@temporalio/common';
import { configureAppSelfService } from '../activities/app-configuration';
import { setBusinessCalendar } from '../activities/business-calendar';
import { previewAppSelfServiceConfig, previewSettingsChange } from '../activities/change-preview';
import type { CommandHandler, ManyHandler } from '../activities/command-ledger';
import { cancelDelegation, setDelegation } from '../activities/delegations';
import { upsertCatalogApp, upsertGroup, upsertOrg, upsertOrgApp, upsertUser, upsertUsers } from '../activities/directory';
import { setTechnicalContact, updateSettings } from '../activities/org-settings';
import { addPersonalBookmark } from '../activities/personal-bookmarks';
import type { Command, InboundType } from '../events/inbound';
import { appRequestWorkflowId, type RequestView } from '../rules/app-request';
import type { CommandResult } from '../rules/commands';
import { delegationWorkflowId } from '../rules/delegation';
import { delegationIdFor, requestIdFor } from '../rules/identifiers';
import { administerUpdate, appRequestWorkflow, cancelUpdate, decideUpdate } from '../workflows/app-request';
import { delegationWorkflow } from '../workflows/delegation';
import { personalAppAddWorkflow, personalAppMoveWorkflow } from '../workflows/personal-apps';
import { SelfServiceCommandType, SelfServiceOrgId } from '../workflows/search-attributes';
import { technicalContactMessageWorkflow } from '../workflows/technical-contact-message';

/**
 * The command catalog: for every inbound type of the contract (`events/inbound.ts` gives its topic and
 * schema), where it goes. One entry per type, checked by the compiler: a type without a route does not
 * compile, and routes hold the workflow functions and Update definitions themselves, never their names.
 *
 * - `apply`: one transaction (effects, result, audit and outbox rows) run by the ingress in batches as
 *   Kafka delivers them; no workflow. The pending requests it affects are signalled before its result
 *   goes out.
 * - `workflow`: a workflow of its own, started (not awaited) under an id derived from the command.
 * - `update`: an Update on a running request's workflow, with the command id as the update id.
 */

export type CommandOf<T extends InboundType> = Extract<Command, { type: T }>;

export interface ApplyRoute<C extends Command> {
  kind: 'apply';
  handler: CommandHandler<C>;
  /** Applies a run of such commands at once (set-based), where that is much faster. */
  many?: ManyHandler<C>;
  /**
   * Carries an applied command on in time: starts the workflow that wakes at a delegation's start and
   * end. Run after the transaction, before the command's held events go out, and again (a no-op) when
   * the command is redelivered, so a crash in between loses nothing.
   */
  follow?: FollowUp<C>;
}

export type FollowUp<C extends Command> = (client: Client, command: C, result: CommandResult, options: { taskQueue: string }) => Promise<void>;

export interface WorkflowRoute<C extends Command> {
  kind: 'workflow';
  workflowId(command: C): string;
  start(client: Client, command: C, options: { taskQueue: string; workflowId: string; searchAttributes: StartSearchAttributes }): Promise<unknown>;
}

export interface UpdateRoute<C extends Command> {
  kind: 'update';
  requestId(command: C): string;
  execute(handle: WorkflowHandle, command: C): Promise<RequestView>;
}

export type Route<C extends Command> = ApplyRoute<C> | WorkflowRoute<C> | UpdateRoute<C>;

export type StartSearchAttributes = Parameters<Client['workflow']['start']>[1]['typedSearchAttributes'];

const apply = <C extends Command>(handler: CommandHandler<C>, many?: ManyHandler<C>, follow?: FollowUp<C>): ApplyRoute<C> => ({ kind: 'apply', handler, many, follow });

/**
 * A delegation that was set gets its workflow (`delegation-<delegationId>`), which wakes at the
 * period's start and end to tell the pending requests concerned (workflows/delegation.ts).
 */
const startDelegationWorkflow: FollowUp<CommandOf<'selfservice.delegation.set-requested.v1'>> = async (client, command, result, { taskQueue }) => {
  if (result.outcome !== 'ACCEPTED') return;
  const delegationId = delegationIdFor(command.commandId);
  const { orgId, userId } = command.data;
  try {
    await client.workflow.start(delegationWorkflow, {
      taskQueue,
      workflowId: delegationWorkflowId(delegationId),
      args: [{ delegationId, orgId, userId, start: new Date(command.data.start).toISOString(), end: new Date(command.data.end).toISOString() }],
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      workflowIdConflictPolicy: 'USE_EXISTING',
      typedSearchAttributes: new TypedSearchAttributes([
        { key: SelfServiceCommandType, value: command.type },
        { key: SelfServiceOrgId, value: orgId },
      ]),
      memo: { commandType: command.type, source: command.source },
    });
  } catch (error) {
    // Started before (a redelivery), or run to its end already.
    if (!(error instanceof WorkflowExecutionAlreadyStartedError)) throw error;
  }
};

/** A workflow route; `args` must fit the workflow's parameters, which the compiler checks here. */
function workflow<C extends Command, A extends [unknown, ...unknown[]]>(
  run: (...args: A) => Promise<unknown>,
  workflowId: (command: C) => string,
  args: (command: C) => A,
): WorkflowRoute<C> {
  return {
    kind: 'workflow',
    workflowId,
    start: (client, command, options) =>
      client.workflow.start(run as Workflow, {
        taskQueue: options.taskQueue,
        workflowId: options.workflowId,
        args: args(command),
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
        workflowIdConflictPolicy: 'USE_EXISTING',
        typedSearchAttributes: options.searchAttributes,
        memo: { commandType: command.type, source: command.source },
      }),
  };
}

type RequestCommand = Extract<Command, { data: { requestId: string } }>;

function update<C extends RequestCommand, I>(definition: UpdateDefinition<RequestView, [I]>, input: (command: C) => I): UpdateRoute<C> {
  return {
    kind: 'update',
    requestId: (command) => command.data.requestId,
    execute: (handle, command) => handle.executeUpdate(definition, { args: [input(command)], updateId: command.commandId }),
  };
}

/** The request an app-requested command opens: its id is derived from the command id (see rules/identifiers.ts). */
export function requestOf(command: CommandOf<'selfservice.app.requested.v1'>): { requestId: string; workflowId: string } {
  const requestId = requestIdFor(command.commandId);
  return { requestId, workflowId: appRequestWorkflowId(requestId) };
}

export const commandCatalog: { [T in InboundType]: Route<CommandOf<T>> } = {
  'selfservice.directory.org-upserted.v1': apply(upsertOrg),
  'selfservice.directory.user-upserted.v1': apply(upsertUser, upsertUsers),
  'selfservice.directory.group-upserted.v1': apply(upsertGroup),
  'selfservice.directory.catalog-app-upserted.v1': apply(upsertCatalogApp),
  'selfservice.directory.org-app-upserted.v1': apply(upsertOrgApp),
  'selfservice.settings.update-requested.v1': apply(updateSettings),
  'selfservice.technical-contact.set-requested.v1': apply(setTechnicalContact),
  'selfservice.business-calendar.set-requested.v1': apply(setBusinessCalendar),
  'selfservice.app.self-service-configured.v1': apply(configureAppSelfService),
  'selfservice.settings.preview-requested.v1': apply(previewSettingsChange),
  'selfservice.app.self-service-preview-requested.v1': apply(previewAppSelfServiceConfig),
  'selfservice.app.requested.v1': workflow(
    appRequestWorkflow,
    (command) => requestOf(command).workflowId,
    (command) => [command, { requestId: requestOf(command).requestId }],
  ),
  'selfservice.personal-app.add-requested.v1': workflow(personalAppAddWorkflow, (command) => `personal-app-add-${command.commandId}`, (command) => [command]),
  // A bookmark is one row and its announcement: applied in one transaction, no workflow.
  'selfservice.personal-bookmark.add-requested.v1': apply(addPersonalBookmark),
  'selfservice.delegation.set-requested.v1': apply(setDelegation, undefined, startDelegationWorkflow),
  'selfservice.delegation.cancel-requested.v1': apply(cancelDelegation),
  'selfservice.personal-app.move-requested.v1': workflow(personalAppMoveWorkflow, (command) => `personal-app-move-${command.commandId}`, (command) => [command]),
  'selfservice.technical-contact.message-submitted.v1': workflow(
    technicalContactMessageWorkflow,
    (command) => `technical-contact-message-${command.commandId}`,
    (command) => [command],
  ),
  'selfservice.app-request.decided.v1': update(decideUpdate, ({ commandId, data: { orgId, approverId, decision, comment, attributes } }) => ({
    orgId,
    approverId,
    decision,
    comment,
    commandId,
    ...(attributes ? { attributes } : {}),
  })),
  'selfservice.app-request.cancelled.v1': update(cancelUpdate, ({ commandId, data }) => ({ orgId: data.orgId, requesterId: data.userId, commandId })),
  'selfservice.app-request.admin-action.v1': update(administerUpdate, ({ commandId, data: { orgId, actorId, action, reason } }) => ({ orgId, actorId, action, reason, commandId })),
};

/** The route of one command, typed by its command type. */
export function routeOf<C extends Command>(command: C): Route<C> {
  return commandCatalog[command.type] as unknown as Route<C>;
}

/** The org a command belongs to (catalog apps belong to none). */
export function orgOf(command: Command): string | undefined {
  return 'orgId' in command.data ? command.data.orgId : undefined;
}

/** The handler of a one-transaction command type, for the activities of workflows from before the catalog. */
export function appliedHandlerFor(type: InboundType): CommandHandler | undefined {
  const route = commandCatalog[type] as Route<Command>;
  return route.kind === 'apply' ? route.handler : undefined;
}
