import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { AccessExtension, AdminActionInput, CancelInput, DecisionInput, RequestView } from '../rules/app-request';

/**
 * Messages of the request workflow (workflow id `app-request-<requestId>`), one definition for both
 * of its versions (app-request.ts, app-request-legacy.ts) and for the callers.
 */
export const decideUpdate = defineUpdate<RequestView, [DecisionInput]>('decide');
export const cancelUpdate = defineUpdate<RequestView, [CancelInput]>('cancel');
export const administerUpdate = defineUpdate<RequestView, [AdminActionInput]>('administer');
export const statusQuery = defineQuery<RequestView>('status');
/** Sent when the directory or the app's configuration changed: re-check approvers and whether the request may go on. */
export const reviewSignal = defineSignal('review');
/** Sent by an extension request's workflow once the extension is granted: the time-bound grant runs longer. */
export const extendAccessSignal = defineSignal<[AccessExtension]>('extendAccess');
