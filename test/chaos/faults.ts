import type { Kafka } from 'kafkajs';
import type { SmtpOutageSwitch } from '../support/smtp-outage';
import type { BackendProcess } from './backend-process';
import { groupMembers, watchConsumerGroup } from './handover';
import type { PrivateStack, ServiceName } from './private-stack';

/** When a fault began and when it ended (the service back, or the replacement process started). */
export interface FaultWindow {
  startedAt: number;
  endedAt: number;
  notes: string[];
}

export interface Fault {
  name: string;
  description: string;
  inject(): Promise<FaultWindow>;
}

export interface FaultTargets {
  stack: PrivateStack;
  worker: BackendProcess;
  ingress: BackendProcess;
  smtp: SmtpOutageSwitch;
  /** The ingress's consumer group, watched after the ingress is killed. */
  ingressGroup: { kafka: Kafka; groupId: string };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/**
 * SIGKILL to the process group, then a new process at once (as a supervisor would restart it). For the
 * ingress, the consumer group is watched until the new member has it alone (noted when it happened).
 */
function killProcess(target: BackendProcess, group?: FaultTargets['ingressGroup']): Fault {
  return {
    name: `${target.name}-sigkill`,
    description: `SIGKILL the ${target.name} process group, start a new ${target.name}`,
    async inject() {
      const oldMembers = group ? await groupMembers(group.kafka, group.groupId).catch(() => []) : [];
      const startedAt = Date.now();
      const pid = target.pid;
      await target.kill();
      const watch = group ? watchConsumerGroup(group.kafka, group.groupId, oldMembers, startedAt).catch((error: unknown) => `group watch failed: ${String(error)}`) : null;
      const { spawnedAt, readyAt } = await target.start();
      const notes = [`killed pid ${String(pid)}; the replacement (pid ${String(target.pid)}) printed its ready line ${seconds(readyAt - spawnedAt)} after its start`];
      void watch?.then((note) => notes.push(note));
      return { startedAt, endedAt: spawnedAt, notes };
    },
  };
}

/** Stops one service of the private stack (stack.sh stop), keeps it down, starts it again. */
function restartService(stack: PrivateStack, service: ServiceName, label: string, downMs: number): Fault {
  return {
    name: `${label}-restart`,
    description: `stop ${label}, keep it down ${seconds(downMs)}, start it again (same data)`,
    async inject() {
      const startedAt = Date.now();
      await stack.stop(service);
      const stoppedAt = Date.now();
      const downUntil = startedAt + downMs;
      if (downUntil > Date.now()) await sleep(downUntil - Date.now());
      const startingAt = Date.now();
      await stack.start(service);
      const endedAt = Date.now();
      return {
        startedAt,
        endedAt,
        notes: [`stop took ${seconds(stoppedAt - startedAt)}, down ${seconds(startingAt - stoppedAt)}, start until ready ${seconds(endedAt - startingAt)}`],
      };
    },
  };
}

/** Every connection to SMTP refused for a while (the relay in front of Mailpit is closed). */
function cutSmtp(smtp: SmtpOutageSwitch, downMs: number): Fault {
  return {
    name: 'smtp-cut',
    description: `cut SMTP (refuse every connection) for ${seconds(downMs)}`,
    async inject() {
      const startedAt = Date.now();
      await smtp.cut();
      await sleep(downMs);
      await smtp.restore();
      return { startedAt, endedAt: Date.now(), notes: [] };
    },
  };
}

export function allFaults(targets: FaultTargets): Fault[] {
  return [
    killProcess(targets.worker),
    killProcess(targets.ingress, targets.ingressGroup),
    restartService(targets.stack, 'kafka', 'kafka', 5000),
    restartService(targets.stack, 'postgres', 'postgres', 5000),
    restartService(targets.stack, 'temporal', 'temporal', 5000),
    cutSmtp(targets.smtp, 10_000),
  ];
}
