import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { RequestView } from '../../rules/app-request';
import { statusQuery } from '../../workflows/app-request';

/** Queries a request's `status` every 100 ms until `ready` holds (at most 30 s). */
export async function waitForView(handle: WorkflowHandle, ready: (view: RequestView) => boolean): Promise<RequestView> {
  for (let attempt = 0; attempt < 300; attempt += 1) {
    const view = await handle.query(statusQuery);
    if (ready(view)) return view;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('the request never reached the expected state');
}

/** The code of an Update's refusal (the ApplicationFailure's type), or the error itself when it is something else. */
export function updateRefusal(error: unknown): unknown {
  if (!(error instanceof WorkflowUpdateFailedError)) return error;
  for (let cause: unknown = error.cause; cause instanceof Error; cause = cause.cause) if (cause instanceof ApplicationFailure) return cause.type;
  return error;
}
