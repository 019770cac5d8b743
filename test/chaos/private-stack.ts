import { execFile } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The services of `services/stack.sh`. */
export type ServiceName = 'temporal' | 'kafka' | 'postgres' | 'mailpit';

export interface StackPorts {
  temporal: number;
  temporalUi: number;
  kafka: number;
  kafkaController: number;
  postgres: number;
  smtp: number;
  mailpitHttp: number;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * Ports for the private stack: a block of ten consecutive free ports in 20000-29999, below the kernel's
 * ephemeral range, so a restarted service does not find its port taken by some client's outgoing socket.
 */
async function freePortBlock(): Promise<StackPorts> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20000 + Math.floor(Math.random() * 999) * 10;
    const taken = await Promise.all(Array.from({ length: 10 }, (_, offset) => portOpen(base + offset)));
    if (taken.some(Boolean)) continue;
    return {
      temporal: base,
      temporalUi: base + 1,
      kafka: base + 2,
      kafkaController: base + 3,
      postgres: base + 4,
      smtp: base + 5,
      mailpitHttp: base + 6,
    };
  }
  throw new Error('no block of 10 free ports found in 20000-29999');
}

/**
 * A second copy of the local services (`services/stack.sh` with its own STACK_DIR and ports), so the
 * fault suite can stop and cut services without touching the shared stack on the default ports.
 */
export class PrivateStack {
  private constructor(
    readonly root: string,
    readonly dir: string,
    readonly ports: StackPorts,
  ) {}

  /** `name`: the folder under .stack/ (`chaos` for the fault suite, `scale-out` for the scale-out run). */
  static async create(root: string, name = 'chaos'): Promise<PrivateStack> {
    // Without the STACK_DIR override, stack.sh would stop and start the SHARED stack's processes.
    if (!readFileSync(path.join(root, 'services', 'stack.sh'), 'utf8').includes('STACK_DIR=${STACK_DIR:-')) {
      throw new Error('services/stack.sh does not honour STACK_DIR; refusing to run a private stack through it');
    }
    return new PrivateStack(root, path.join(root, '.stack', name), await freePortBlock());
  }

  get logDir(): string {
    return path.join(this.dir, 'logs');
  }

  get temporalAddress(): string {
    return `127.0.0.1:${this.ports.temporal}`;
  }

  get kafkaBrokers(): string {
    return `127.0.0.1:${this.ports.kafka}`;
  }

  get databaseUrl(): string {
    return `postgresql://selfservice:selfservice@127.0.0.1:${this.ports.postgres}/selfservice`;
  }

  /** Mailpit's own SMTP port (the backend talks to the relay in front of it). */
  get mailpitSmtpUrl(): string {
    return `smtp://127.0.0.1:${this.ports.smtp}`;
  }

  get mailpitUrl(): string {
    return `http://127.0.0.1:${this.ports.mailpitHttp}`;
  }

  /** Every address variable stack.sh and the backend read, pointing at the private copy only. */
  env(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      STACK_DIR: this.dir,
      TEMPORAL_ADDRESS: this.temporalAddress,
      TEMPORAL_UI_PORT: String(this.ports.temporalUi),
      TEMPORAL_UI_URL: `http://127.0.0.1:${this.ports.temporalUi}`,
      KAFKA_BROKERS: this.kafkaBrokers,
      KAFKA_CONTROLLER_PORT: String(this.ports.kafkaController),
      KAFKA_HEAP_OPTS: process.env.CHAOS_KAFKA_HEAP_OPTS ?? '-Xms128m -Xmx512m',
      // The owner role for both: migrations, the processes and the audit (a role split may be in progress).
      DATABASE_URL: this.databaseUrl,
      MIGRATION_DATABASE_URL: this.databaseUrl,
      SMTP_URL: this.mailpitSmtpUrl,
      MAILPIT_URL: this.mailpitUrl,
      // Mailpit deletes all but the newest 500 messages by default; the audit needs every one.
      MP_MAX_MESSAGES: '0',
    };
  }

  private async stack(args: string[]): Promise<string> {
    const script = path.join(this.root, 'services', 'stack.sh');
    try {
      const { stdout } = await run('bash', [script, ...args], { env: this.env(), maxBuffer: 16 * 1024 * 1024 });
      return stdout;
    } catch (error) {
      const failure = error as { stdout?: string; stderr?: string; message: string };
      throw new Error(`stack.sh ${args.join(' ')} failed: ${failure.stderr || failure.stdout || failure.message}`);
    }
  }

  /** Stops what a previous, interrupted run left behind (stack.sh only stops processes of this STACK_DIR) and deletes its data. */
  async fresh(): Promise<void> {
    await this.stack(['stop']);
    for (const sub of ['data', 'etc', 'logs', 'run']) rmSync(path.join(this.dir, sub), { recursive: true, force: true });
  }

  async start(...services: ServiceName[]): Promise<void> {
    await this.stack(['start', ...services]);
  }

  async stop(...services: ServiceName[]): Promise<void> {
    await this.stack(['stop', ...services]);
  }

  /** The migrations, as `services/app.sh up` applies them. */
  async migrate(): Promise<void> {
    await run('npx', ['prisma', 'migrate', 'deploy'], { cwd: this.root, env: this.env(), maxBuffer: 16 * 1024 * 1024 });
  }
}
