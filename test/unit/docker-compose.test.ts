import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { loadConfig } from '../../workers/config';
import { kafkaSettingsFrom } from '../../workers/kafka-settings';
import { codecServerOptionsFromConfig } from '../../workers/codec-server';
import { ALL_SEARCH_ATTRIBUTES } from '../../workflows/search-attributes';

/** docker-compose.yml cannot run here (no Docker engine); this checks that it parses and is wired. */
interface ComposeService {
  image?: string;
  command?: string | string[];
  environment?: Record<string, string | number>;
  depends_on?: Record<string, unknown>;
}
const compose = parse(readFileSync(path.join(__dirname, '..', '..', 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, ComposeService>;
};
const composeText = readFileSync(path.join(__dirname, '..', '..', 'docker-compose.yml'), 'utf8');
/** A value that compose takes from the environment or .env and nothing else: `${NAME}`, `${NAME:?message}`, `${NAME:-}`. */
const FROM_ENVIRONMENT = /^\$\{([A-Z][A-Z0-9_]*)(:?\?[^}]*|:?-)?\}$/;

describe('docker-compose.yml', () => {
  test('defines every service of the stack and the backend processes', () => {
    expect(Object.keys(compose.services).sort()).toEqual(
      ['codec-server', 'db-roles', 'ingress', 'kafka', 'mailpit', 'migrate', 'postgres', 'relay', 'temporal', 'worker'].sort(),
    );
  });

  test.each(['worker', 'ingress', 'relay', 'migrate', 'codec-server'])('%s gets an environment the config module accepts, pointing at the compose services', (name) => {
    const environment = compose.services[name]?.environment ?? {};
    const config = loadConfig(Object.fromEntries(Object.entries(environment).map(([k, v]) => [k, String(v)])));
    expect(config.TEMPORAL_ADDRESS).toBe('temporal:7233');
    expect(config.KAFKA_BROKERS).toEqual(['kafka:9092']);
    expect(new URL(config.DATABASE_URL).hostname).toBe('postgres');
    expect(new URL(config.SMTP_URL).hostname).toBe('mailpit');
  });

  test('the backend processes run the compiled entry points with plain node, one process per container, built by the migrate job', () => {
    const entries = { worker: 'temporal-worker', ingress: 'kafka-ingress', relay: 'outbox-relay-process', 'codec-server': 'codec-server' };
    const root = path.join(__dirname, '..', '..');
    for (const [name, entry] of Object.entries(entries)) {
      const service = compose.services[name] as ComposeService & { init?: boolean };
      // No npm, no tsx, no shell between the container's init and node: a stop signal reaches the process that works.
      expect({ name, command: service.command }).toEqual({ name, command: `node dist/workers/${entry}.js` });
      expect({ name, init: service.init }).toEqual({ name, init: true });
      expect(readFileSync(path.join(root, 'workers', `${entry}.ts`), 'utf8')).toContain('main()');
    }
    // dist/ is written by `npm run build` before any of them starts (they depend on the migrate job).
    const migrate = String(compose.services.migrate?.command);
    expect(migrate).toMatch(/npx prisma generate && npm run build/);
    const packageJson = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(packageJson.scripts.build).toContain('build');
    const build = JSON.parse(readFileSync(path.join(root, 'tsconfig.build.json'), 'utf8')) as { compilerOptions: Record<string, unknown>; include: string[] };
    expect(build.compilerOptions.outDir).toBe('dist');
    expect(build.include).toEqual(expect.arrayContaining(['workers', 'activities', 'workflows', 'events', 'rules', 'prisma/client']));
  });

  test('the Web UI decodes payloads through the codec server, which gets the encryption key', () => {
    expect(compose.services.temporal?.command).toContain('--ui-codec-endpoint=http://127.0.0.1:8888');
    expect(String(compose.services['codec-server']?.environment?.PAYLOAD_ENCRYPTION_KEY)).toMatch(/PAYLOAD_ENCRYPTION_KEY/);
  });

  // ---- codec server exposure and auth (issue 9) ----------------------------------------------------
  test('the codec server is published on loopback only, alone on its network, and verifies JWTs set from the environment', () => {
    type Exposed = ComposeService & { ports?: string[]; networks?: string[] | Record<string, unknown> };
    const file = compose as unknown as { services: Record<string, Exposed>; networks?: Record<string, unknown> };
    const networksOf = (service: Exposed) => (service.networks === undefined ? ['default'] : Array.isArray(service.networks) ? service.networks : Object.keys(service.networks));
    const codec = file.services['codec-server']!;
    // The operator's browser calls it for the Web UI, so its port is published: on the host's loopback only.
    expect(codec.ports?.length).toBeGreaterThan(0);
    for (const port of codec.ports ?? []) expect(String(port)).toMatch(/^127\.0\.0\.1:\d+:8888$/);
    // It needs nothing of the stack: on its own network, where no database, broker or Temporal server is.
    expect(networksOf(codec)).toEqual(['codec']);
    expect(file.networks).toHaveProperty('codec');
    for (const [name, service] of Object.entries(file.services)) {
      if (name !== 'codec-server') expect({ name, networks: networksOf(service) }).toEqual({ name, networks: expect.not.arrayContaining(['codec']) });
    }

    // Off loopback only JWTs are allowed; issuer, audience and key set come from the environment (.env).
    const environment = Object.fromEntries(Object.entries(codec.environment ?? {}).map(([key, value]) => [key, String(value)]));
    expect(environment.CODEC_AUTH).toBe('jwt');
    for (const key of ['CODEC_JWT_ISSUER', 'CODEC_JWT_AUDIENCE', 'CODEC_JWKS_URL']) expect(FROM_ENVIRONMENT.exec(environment[key] ?? '')?.[1]).toBe(key);
    expect(environment).not.toHaveProperty('CODEC_STATIC_TOKEN');
    expect(environment.CODEC_ENABLE_ENCODE).toBe('false');
    // What the codec server does with it once compose has filled the variables in.
    const filled = (values: Record<string, string>) =>
      loadConfig(Object.fromEntries(Object.entries(environment).map(([key, value]) => [key, value.replace(/\$\{([A-Z][A-Z0-9_]*)[^}]*\}/g, (_match, name: string) => ({ KAFKA_PASSWORD: 'from-the-environment', ...values })[name] ?? '')])));
    const options = codecServerOptionsFromConfig(filled({ CODEC_JWT_ISSUER: 'https://acme.okta.com/oauth2/default', CODEC_JWT_AUDIENCE: 'api://temporal-ui' }));
    expect(options).toMatchObject({ auth: { mode: 'jwt' }, allowedHosts: ['127.0.0.1', 'localhost'], enableEncode: false });
    expect(() => codecServerOptionsFromConfig(filled({}))).toThrow(/CODEC_AUTH=jwt needs CODEC_JWT_ISSUER and CODEC_JWT_AUDIENCE/);
    const withStaticToken = { ...filled({}), CODEC_AUTH: 'static' as const, CODEC_STATIC_TOKEN: 'x'.repeat(40) };
    expect(() => codecServerOptionsFromConfig(withStaticToken)).toThrow(/allowed only when CODEC_SERVER_HOST is a loopback address, not 0\.0\.0\.0/);
  });
  // ---- end of codec server exposure and auth -------------------------------------------------------

  test('no password or other secret is written in the file: each comes from the environment or a git-ignored .env', () => {
    // Every secret-named setting of every service, and every password inside a URL, is an interpolation.
    for (const [name, service] of Object.entries(compose.services)) {
      for (const [key, value] of Object.entries(service.environment ?? {})) {
        if (/PASSWORD|SECRET|TOKEN|_KEY$/.test(key)) expect({ service: name, key, value: String(value) }).toEqual({ service: name, key, value: expect.stringMatching(FROM_ENVIRONMENT) });
      }
    }
    const passwordsInUrls = [...composeText.matchAll(/[a-z]+:\/\/[^\s:@/"']+:([^@\s"']*)@/g)].map((match) => match[1]);
    expect(passwordsInUrls.length).toBeGreaterThan(0);
    for (const password of passwordsInUrls) expect(password).toMatch(FROM_ENVIRONMENT);
    // The same, line by line, for secrets outside the services' environment maps.
    for (const line of composeText.split('\n').filter((text) => !/^\s*#/.test(text))) {
      const setting = /^\s*-?\s*"?([A-Z][A-Z0-9_]*(PASSWORD|SECRET|TOKEN|_KEY))"?\s*[:=]\s*(\S.*)$/.exec(line);
      if (setting) expect(setting[3]?.trim()).toMatch(FROM_ENVIRONMENT);
    }
    // Every variable the file requires is in the committed .env.example, without a value; .env is git-ignored.
    const root = path.join(__dirname, '..', '..');
    const required = [...new Set([...composeText.matchAll(/\$\{([A-Z][A-Z0-9_]*):\?/g)].map((match) => match[1]))].sort();
    expect(required).toEqual(expect.arrayContaining(['APP_DB_PASSWORD', 'POSTGRES_PASSWORD']));
    const example = readFileSync(path.join(root, '.env.example'), 'utf8');
    for (const name of required) expect(example).toMatch(new RegExp(`^${name}=$`, 'm'));
    expect(example.split('\n').filter((line) => /^[A-Z][A-Z0-9_]*=\S/.test(line))).toEqual([]);
    expect(readFileSync(path.join(root, '.gitignore'), 'utf8').split('\n').map((line) => line.trim())).toContain('.env');
  });

  test('the worker, the ingress and the codec server connect as the application role, never as the owner', () => {
    const owner = String(compose.services.postgres?.environment?.POSTGRES_USER);
    for (const name of ['worker', 'ingress', 'codec-server']) {
      const environment = compose.services[name]?.environment ?? {};
      const url = new URL(String(environment.DATABASE_URL));
      expect({ name, user: url.username }).toEqual({ name, user: 'selfservice_app' });
      expect(url.username).not.toBe(owner);
      expect(decodeURIComponent(url.password)).toBe('${APP_DB_PASSWORD}');
      expect(environment).not.toHaveProperty('MIGRATION_DATABASE_URL');
      expect(JSON.stringify(environment)).not.toContain('POSTGRES_PASSWORD');
    }
  });

  test('the migrations run as the owner role, after the one-shot db-roles service has made the application role', () => {
    const postgres = compose.services.postgres?.environment ?? {};
    const migrate = compose.services.migrate ?? {};
    const migration = new URL(String(migrate.environment?.MIGRATION_DATABASE_URL));
    expect(migration.username).toBe(String(postgres.POSTGRES_USER));
    expect(decodeURIComponent(migration.password)).toBe('${POSTGRES_PASSWORD}');
    expect(migration.hostname).toBe('postgres');
    expect(migration.pathname).toBe(`/${String(postgres.POSTGRES_DB)}`);
    expect(migrate.depends_on?.['db-roles']).toEqual({ condition: 'service_completed_successfully' });

    const roles = compose.services['db-roles'] ?? {};
    expect(roles.environment?.PGUSER).toBe(postgres.POSTGRES_USER);
    expect(roles.environment?.APP_DB_PASSWORD).toMatch(FROM_ENVIRONMENT);
    expect(roles.depends_on?.postgres).toEqual({ condition: 'service_healthy' });
    const script = ([] as string[]).concat(roles.command ?? []).join('\n');
    expect(script).toContain('CREATE ROLE selfservice_app LOGIN');
    expect(script).toMatch(/ALTER ROLE selfservice_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE .*PASSWORD :'app_password'/);
    expect(script).toContain('\\getenv app_password APP_DB_PASSWORD');
    // The role that the migration grants its rights to is the one compose makes.
    const migrationsDir = path.join(__dirname, '..', '..', 'prisma', 'migrations');
    const grants = readdirSync(migrationsDir)
      .filter((name) => name.endsWith('_application_role'))
      .map((name) => readFileSync(path.join(migrationsDir, name, 'migration.sql'), 'utf8'))
      .join('\n');
    expect(grants).toMatch(/GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO selfservice_app/);
  });

  test('the Temporal server registers every search attribute the workflows set', () => {
    const command = (compose.services.temporal?.command ?? []) as string[];
    for (const key of ALL_SEARCH_ATTRIBUTES) {
      expect(command).toContain(`--search-attribute=${key.name}=${key.type === 'KEYWORD_LIST' ? 'KeywordList' : 'Keyword'}`);
    }
  });
  test('Kafka takes clients only through SASL (SCRAM-SHA-512); the backend processes authenticate with a password from the environment', () => {
    const properties = Object.fromEntries(
      readFileSync(path.join(__dirname, '..', '..', 'services', 'compose', 'kafka-server.properties'), 'utf8')
        .split('\n')
        .filter((line) => line.trim() && !line.startsWith('#'))
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
    );
    const protocols = Object.fromEntries((properties['listener.security.protocol.map'] ?? '').split(',').map((pair) => pair.split(':')));
    for (const listener of (properties.listeners ?? '').split(',')) {
      const [name, address] = [listener.slice(0, listener.indexOf('://')), listener.slice(listener.indexOf('://') + 3)];
      // A plaintext listener is bound to the container's loopback; everything else needs SASL.
      if (protocols[name] === 'PLAINTEXT') expect(address).toMatch(/^127\.0\.0\.1:/);
      else expect(protocols[name]).toMatch(/^SASL_/);
    }
    expect(properties['sasl.enabled.mechanisms']).toBe('SCRAM-SHA-512');
    const kafka = compose.services.kafka!;
    expect(JSON.stringify(kafka.command)).toContain('--add-scram');
    expect(String(kafka.environment?.KAFKA_PASSWORD)).toMatch(FROM_ENVIRONMENT);
    for (const name of ['worker', 'ingress', 'migrate']) {
      const environment = Object.fromEntries(Object.entries(compose.services[name]?.environment ?? {}).map(([key, value]) => [key, String(value)]));
      expect({ name, mechanism: environment.KAFKA_SASL_MECHANISM, user: environment.KAFKA_SASL_USERNAME }).toEqual({ name, mechanism: 'scram-sha-512', user: 'selfservice' });
      expect(environment.KAFKA_SASL_PASSWORD).toMatch(FROM_ENVIRONMENT);
      const settings = kafkaSettingsFrom(loadConfig({ ...environment, KAFKA_SASL_PASSWORD: 'from-the-environment' }));
      expect(settings.sasl).toMatchObject({ mechanism: 'scram-sha-512', username: 'selfservice' });
    }
  });
});
