import { orgsWithUnsealedAudit, readAuditSealBacklog, sealAuditChain, type AuditSealBacklog } from '../activities/audit-chain';
import { createDatabase, type Database } from '../activities/database';
import { isTransient } from '../activities/failures';
import { componentLogger, logLine, type LogLine } from './logger';
import { Alarm, backoffMs, brief } from './outbox-relay';

/**
 * The audit sealer: chains every org's new audit entries shortly after they commit
 * (activities/audit-chain.ts, rules/audit-chain.ts). It runs in the outbox relay process, beside the
 * relay: it wakes on the relay's notifications (an audited command writes outbox rows in the same
 * transaction) and polls every `pollIntervalMs` for the rest. Several may run at once (one per relay):
 * an org's chain is extended by one of them at a time, the others skip it.
 *
 * A failure (the database away, or anything else) is logged and the pass retried with back-off; it
 * never ends the process. An org that fails does not stop the others of the pass.
 */

/** Orgs taken per pass (a pass goes on at once while there are more). */
const ORGS_PER_PASS = 100;

export interface AuditSealerOptions {
  /** The application role's URL (DATABASE_URL). */
  databaseUrl: string;
  log?: LogLine;
  metrics?: AuditSealerMetrics;
  /** Entries per org and transaction (default 500). */
  batchSize?: number;
  /** Polling when nothing wakes it (default 1000 ms). */
  pollIntervalMs?: number;
}

/** What the sealer reports for Prometheus (workers/metrics.ts). */
export interface AuditSealerMetrics {
  sealed(count: number): void;
  sealFailed(): void;
}

export interface AuditSealer {
  /** Runs a pass now, unless the sealer is backing off after a failure. */
  wake(): void;
  /** Finishes the transaction in progress, then closes its database connections. */
  stop(): Promise<void>;
  /** Unsealed entries and the age of the oldest (every org). */
  backlog(): Promise<AuditSealBacklog>;
}

export function startAuditSealer(options: AuditSealerOptions): AuditSealer {
  const { batchSize = 500, pollIntervalMs = 1000 } = options;
  const log: LogLine = options.log ?? logLine(componentLogger('audit-sealer'), 'warn');
  const db: Database = createDatabase(options.databaseUrl);
  const alarm = new Alarm();
  let stopping = false;
  let woken = false;
  let failures = 0;

  function wake(): void {
    if (stopping) return;
    woken = true;
    if (failures === 0) alarm.ring();
  }

  /** Every org with unsealed entries, a batch each. True when more may wait. */
  async function pass(): Promise<boolean> {
    const orgs = await orgsWithUnsealedAudit(db, ORGS_PER_PASS);
    let more = orgs.length === ORGS_PER_PASS;
    let failed: { orgId: string; error: unknown } | null = null;
    for (const orgId of orgs) {
      if (stopping) break;
      try {
        const result = await sealAuditChain(db, orgId, batchSize);
        if (result.sealed > 0) options.metrics?.sealed(result.sealed);
        if (result.more) more = true;
      } catch (error) {
        failed ??= { orgId, error };
      }
    }
    if (failed) throw new Error(`org ${failed.orgId}: ${brief(failed.error)}`, { cause: failed.error });
    return more;
  }

  async function run(): Promise<void> {
    while (!stopping) {
      woken = false;
      try {
        const more = await pass();
        if (failures > 0) log(`sealing again after ${failures} failed attempt(s)`);
        failures = 0;
        if (!more && !woken && !stopping) await alarm.wait(pollIntervalMs);
      } catch (error) {
        failures += 1;
        options.metrics?.sealFailed();
        const delay = backoffMs(failures);
        const kind = isTransient(error instanceof Error && error.cause !== undefined ? error.cause : error) ? 'transient' : 'permanent';
        log(`sealing audit entries failed (${kind}, attempt ${failures}, next in ${delay} ms): ${brief(error)}`);
        if (!stopping) await alarm.wait(delay);
      }
    }
  }

  const running = run();
  let stopped: Promise<void> | undefined;
  return {
    wake,
    backlog: () => readAuditSealBacklog(db),
    stop() {
      stopped ??= (async () => {
        stopping = true;
        alarm.ring();
        await running;
        await db.$disconnect();
      })();
      return stopped;
    },
  };
}
