import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { loadConfig } from '../../workers/config';
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

describe('docker-compose.yml', () => {
  test('defines every service of the stack and the two backend processes', () => {
    expect(Object.keys(compose.services).sort()).toEqual(
      ['codec-server', 'ingress', 'kafka', 'mailpit', 'migrate', 'postgres', 'temporal', 'worker'].sort(),
    );
  });

  test.each(['worker', 'ingress', 'migrate', 'codec-server'])('%s gets an environment the config module accepts, pointing at the compose services', (name) => {
    const environment = compose.services[name]?.environment ?? {};
    const config = loadConfig(Object.fromEntries(Object.entries(environment).map(([k, v]) => [k, String(v)])));
    expect(config.TEMPORAL_ADDRESS).toBe('temporal:7233');
    expect(config.KAFKA_BROKERS).toEqual(['kafka:9092']);
    expect(new URL(config.DATABASE_URL).hostname).toBe('postgres');
    expect(new URL(config.SMTP_URL).hostname).toBe('mailpit');
  });

  test('the Web UI decodes payloads through the codec server, which gets the encryption key', () => {
    expect(compose.services.temporal?.command).toContain('--ui-codec-endpoint=http://127.0.0.1:8888');
    expect(String(compose.services['codec-server']?.environment?.PAYLOAD_ENCRYPTION_KEY)).toMatch(/PAYLOAD_ENCRYPTION_KEY/);
  });

  test('the Temporal server registers every search attribute the workflows set', () => {
    const command = (compose.services.temporal?.command ?? []) as string[];
    for (const key of ALL_SEARCH_ATTRIBUTES) {
      expect(command).toContain(`--search-attribute=${key.name}=${key.type === 'KEYWORD_LIST' ? 'KeywordList' : 'Keyword'}`);
    }
  });
});
