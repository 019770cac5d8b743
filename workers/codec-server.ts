import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { JSONToPayload, payloadToJSON, type JSONPayload } from '@temporalio/common/lib/proto-utils';
import { loadConfig } from './config';
import { codecFromConfig } from './payload-codec';

/**
 * The remote codec endpoint the Temporal Web UI calls to show encrypted payloads in clear to operators
 * (`temporal server start-dev --ui-codec-endpoint http://127.0.0.1:8888`). POST /decode and /encode take
 * and return `{ payloads: [...] }` in Temporal's JSON form.  Bound to 127.0.0.1 by default; only the configured UI
 * origins may call it from a browser (CODEC_SERVER_HOST, CODEC_SERVER_PORT, CODEC_CORS_ORIGINS).
 */
export function createCodecServer(codec: PayloadCodec, allowedOrigins: string[]): Server {
  const readBody = async (request: IncomingMessage): Promise<string> => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  };

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const origin = request.headers.origin;
    if (origin && allowedOrigins.includes(origin)) {
      response.setHeader('Access-Control-Allow-Origin', origin);
      response.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
      response.setHeader('Access-Control-Allow-Headers', 'content-type, x-namespace');
      response.setHeader('Vary', 'Origin');
    }
    if (request.method === 'OPTIONS') {
      response.writeHead(204).end();
      return;
    }
    const operation = request.url === '/decode' ? 'decode' : request.url === '/encode' ? 'encode' : null;
    if (request.method !== 'POST' || !operation) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('POST /decode or /encode');
      return;
    }
    let payloads: Payload[];
    try {
      const body = JSON.parse(await readBody(request)) as { payloads?: JSONPayload[] };
      if (!Array.isArray(body.payloads)) throw new Error('the body must be { "payloads": [...] }');
      payloads = body.payloads.map((payload) => JSONToPayload(payload));
    } catch (error) {
      response.writeHead(400, { 'content-type': 'text/plain' }).end(`bad request: ${(error as Error).message}`);
      return;
    }
    try {
      const result = await codec[operation](payloads);
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ payloads: result.map(payloadToJSON) }));
    } catch (error) {
      response.writeHead(422, { 'content-type': 'text/plain' }).end(`cannot ${operation}: ${(error as Error).message}`);
    }
  };

  return createServer((request, response) => {
    handle(request, response).catch(() => response.writeHead(500).end());
  });
}

async function main(): Promise<void> {
  const config = loadConfig();
  const server = createCodecServer(codecFromConfig(config), config.CODEC_CORS_ORIGINS);
  server.listen(config.CODEC_SERVER_PORT, config.CODEC_SERVER_HOST, () => {
    console.log(`codec-server: listening on http://${config.CODEC_SERVER_HOST}:${config.CODEC_SERVER_PORT} for ${config.CODEC_CORS_ORIGINS.join(', ')}`);
  });
  const stop = () => server.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error('codec-server: failed:', error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
