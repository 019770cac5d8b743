import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP relay in front of the real SMTP sink, so a test can cut SMTP off for its own backend (every
 * connection refused, as when the server is down) without stopping the sink that other suites share.
 * Mail that gets through reaches the real Mailpit unchanged.
 */
export class SmtpOutageSwitch {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly target: { host: string; port: number },
    readonly port: number,
  ) {}

  static async start(smtpUrl: string): Promise<SmtpOutageSwitch> {
    const url = new URL(smtpUrl);
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as { port: number }).port;
    await new Promise((resolve) => probe.close(resolve));
    const relay = new SmtpOutageSwitch({ host: url.hostname, port: Number(url.port || 25) }, port);
    await relay.restore();
    return relay;
  }

  get smtpUrl(): string {
    return `smtp://127.0.0.1:${this.port}`;
  }

  /** SMTP is back: connections reach the sink again. */
  async restore(): Promise<void> {
    if (this.server) return;
    const server = createServer((client) => {
      const upstream = connect(this.target.port, this.target.host);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => socket.destroy());
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.server = server;
  }

  /** SMTP is down: open connections drop and new ones are refused. */
  async cut(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
}
