import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { startBenchBackend, type BenchBackend } from './backend';
import { CommandChannel } from './command-channel';
import { createDemoOrg, type DemoOrg } from './demo-org';
import { parseOptions, USAGE, UsageRequested, type BenchOptions, type ScenarioName } from './options';
import { OutboundWatch } from './outbound-watch';
import { formatReport, machine, writeReport, type BenchReport } from './report';
import { burst } from './scenarios/burst';
import { decision } from './scenarios/decision';
import { directorySync } from './scenarios/directory-sync';
import { heldLoad } from './scenarios/held-load';
import type { Scenario, ScenarioContext } from './scenarios/scenario';
import { sequential } from './scenarios/sequential';
import { sleep } from './stats';
import { startTemporalBaseline, type TemporalBaseline } from './temporal-baseline';

/**
 * The benchmark suite: the backend (the ingress and the relay in this process, the worker in its own
 * process by default, on the running services) against bare Temporal
 * measured in the same run on the same servers. Writes a JSON report and prints a table.
 * Usage: see options.ts (`npm run bench -- --help`).
 */

const root = path.resolve(__dirname, '..');
const STOP_TIMEOUT_MS = 60_000;

/** Run order: the idle-system measures first, the one that may leave a backlog (directory) last. */
const SCENARIO_RUNNERS: Record<ScenarioName, Scenario> = {
  sequential,
  decision,
  burst,
  held: heldLoad,
  directory: directorySync,
};

/** Requests the selected scenarios make (each with its one warm-up request). */
function demoOrgNeeds(options: BenchOptions) {
  const on = (name: ScenarioName, count: number) => (options.only.includes(name) ? count : 0);
  return {
    autoGrantRequests: on('burst', options.burst + 1) + on('sequential', options.sequential + 1) + on('held', options.heldProbe),
    approvalRequests: on('decision', options.decision + 1) + on('held', options.held),
  };
}

function startServices(): void {
  execFileSync('bash', [path.join(root, 'services', 'stack.sh'), 'start'], { stdio: 'inherit' });
}

async function main(): Promise<void> {
  let options: BenchOptions;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (error) {
    if (error instanceof UsageRequested) {
      console.log(USAGE);
      return;
    }
    throw error;
  }
  // Payloads are encrypted as in production; a run without a configured key uses a throwaway one.
  process.env.PAYLOAD_ENCRYPTION_KEY ??= randomBytes(32).toString('base64');
  startServices();
  Runtime.install({ logger: new DefaultLogger('WARN') }); // the workers' INFO lines would bury the table
  const startedAt = new Date().toISOString();
  console.log(`bench: ${options.only.join(', ')} (${JSON.stringify({ ...options, only: undefined })})`);

  let backend: BenchBackend | undefined;
  let baseline: TemporalBaseline | undefined;
  let watch: OutboundWatch | undefined;
  let channel: CommandChannel | undefined;
  let org: DemoOrg | undefined;
  const scenarios: BenchReport['scenarios'] = [];
  const failures: BenchReport['failures'] = [];
  try {
    backend = await startBenchBackend(options.worker);
    baseline = await startTemporalBaseline(backend.config.TEMPORAL_ADDRESS, backend.config.TEMPORAL_NAMESPACE);
    watch = await OutboundWatch.start(backend.kafka, backend.topics);
    channel = await CommandChannel.open(backend.kafka, backend.topics);
    console.log(`bench: backend up (${backend.parts.join(', ')}); making the demo org through Kafka`);
    org = await createDemoOrg(channel, watch, backend.run, demoOrgNeeds(options), options.timeoutSeconds * 1000);
    console.log(`bench: demo org ${org.orgId}: ${org.setup.commands} commands accepted in ${org.setup.seconds.toFixed(1)} s`);
    const context: ScenarioContext = { backend, channel, watch, org, baseline, options };
    for (const name of options.only) {
      console.log(`bench: ${name} ...`);
      try {
        const result = await SCENARIO_RUNNERS[name](context);
        scenarios.push(result);
        console.log(`bench: ${name} done${result.complete ? '' : ' (partial)'}: ${result.rows.map((row) => `${row.metric} ${row.system}`).join(', ')}`);
      } catch (error) {
        failures.push({ scenario: name, error: error instanceof Error ? error.message : String(error) });
        console.error(`bench: ${name} failed:`, error instanceof Error ? error.message : error);
      }
    }
  } catch (error) {
    failures.push({ scenario: 'setup', error: error instanceof Error ? error.message : String(error) });
  } finally {
    const report: BenchReport = {
      run: backend?.run ?? 'not-started',
      startedAt,
      finishedAt: new Date().toISOString(),
      machine: machine(),
      options,
      backend: {
        parts: backend?.parts ?? [],
        workerPlacement: backend?.workerPlacement ?? options.worker,
        database: backend?.databaseName ?? '',
        topicNamespace: backend?.config.KAFKA_TOPIC_NAMESPACE ?? '',
        taskQueue: backend?.config.TEMPORAL_TASK_QUEUE ?? '',
        temporal: backend?.config.TEMPORAL_ADDRESS ?? '',
      },
      demoOrg: org ? { orgId: org.orgId, ...org.setup } : null,
      scenarios,
      failures,
    };
    console.log(formatReport(report));
    console.log(`\nreport: ${writeReport(report, path.resolve(root, options.reportPath))}`);
    if (failures.length > 0) process.exitCode = 1;
    await Promise.allSettled([channel?.close(), watch?.stop()]);
    await baseline?.stop().catch(() => undefined);
    // A backend still working off a backlog (a directory sync past its timeout) may take long to stop.
    const stopped = await Promise.race([backend?.stop().then(() => true), sleep(STOP_TIMEOUT_MS).then(() => false)]);
    if (stopped === false) console.error(`bench: the backend did not stop within ${STOP_TIMEOUT_MS / 1000} s; exiting anyway`);
  }
}

main()
  .catch((error: unknown) => {
    console.error('bench:', error instanceof Error ? error.message : error);
    process.exitCode = 1;
  })
  .finally(() => {
    // Clients (kafkajs, Temporal) may keep timers a little after they close: end the run now.
    setTimeout(() => process.exit(), 1000).unref();
  });
