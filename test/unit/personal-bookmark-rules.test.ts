import { blockedDomainFor, catalogAppInstead, domainSuffixes, type CatalogAccess, type CatalogCandidate } from '../../activities/personal-bookmarks';
import { bookmarkHost, checkBookmarkUrl } from '../../events/bookmark-url';
import { deadLetterCopy, redactedValue } from '../../events/dead-letters';
import { catalogAppUpserted, personalBookmarkAddRequested } from '../../events/inbound';
import { withoutUrlCredentials } from '../../events/secrets';
import { describeIssues } from '../../events/validation';

describe('a bookmark URL', () => {
  test.each([
    ['https://Wiki.Example.org', 'https://wiki.example.org/'],
    ['https://wiki.example.org:443/a/../b?q=1#top', 'https://wiki.example.org/b?q=1#top'],
    ['https://wiki.example.org:8443/page', 'https://wiki.example.org:8443/page'],
    ['https://%77iki.example.org/', 'https://wiki.example.org/'],
    ['https://bücher.example/regal', 'https://xn--bcher-kva.example/regal'],
    ['https://shop.example.xn--p1ai/', 'https://shop.example.xn--p1ai/'],
    ['https://wiki.example.org/a page', 'https://wiki.example.org/a%20page'],
  ])('%s is accepted as %s', (input, normalized) => {
    expect(checkBookmarkUrl(input)).toEqual({ ok: true, url: normalized, host: new URL(normalized).hostname });
  });

  test.each([
    ['', 'must not be empty'],
    ['wiki.example.org/page', 'must be an absolute URL'],
    ['#section', 'must be an absolute URL'],
    ['/relative/path', 'must be an absolute URL'],
    ['http://wiki.example.org/', 'must use https://'],
    ['ftp://files.example.org/', 'must use https://'],
    ['javascript:alert(1)', 'must use https://'],
    ['data:text/html,hello', 'must use https://'],
    ['https://jane:hunter2@wiki.example.org/', 'must not carry a username or password'],
    ['https://jane@wiki.example.org/', 'must not carry a username or password'],
    ['https:jane:hunter2@wiki.example.org', 'must not carry a username or password'],
    ['https://127.0.0.1/', 'not an IP address'],
    ['https://0x7f.1/', 'not an IP address'],
    ['https://2130706433/', 'not an IP address'],
    ['https://[::1]/', 'not an IP address'],
    ['https://[2001:db8::1]:8443/', 'not an IP address'],
    ['https://localhost/', 'must not point to localhost'],
    ['https://app.localhost/', 'must not point to localhost'],
    ['https://intranet/', 'full domain name'],
    ['https://wiki.example.org./', 'full domain name'],
    ['https://-bad.example.org/', 'full domain name'],
    ['https://under_score.example.org/', 'full domain name'],
    ['https://wiki.example.org/?access_token=abc', 'must not carry credentials'],
    ['https://wiki.example.org/?user=jane&password=x', 'must not carry credentials'],
    ['https://wiki.example.org/?api_key=abc', 'must not carry credentials'],
    ['https://wiki.example.org/#id_token=abc', 'must not carry credentials'],
    ['https://wiki.example.org/?%74oken=abc', 'must not carry credentials'],
    ['https://wiki.example.org/\u0000', 'control characters'],
    [`https://wiki.example.org/${'a'.repeat(2048)}`, 'at most 2048 characters'],
    [`https://wiki.example.org/${'ü'.repeat(600)}`, 'once normalized'],
  ].map(([input, problem]) => [input!.length > 80 ? `${input!.slice(0, 40)}... (${input!.length} characters)` : JSON.stringify(input), problem!, input!]))('%s is refused: %s', (_label, problem, input) => {
    const check = checkBookmarkUrl(input);
    expect(check.ok).toBe(false);
    expect(check.ok ? '' : check.problem).toContain(problem);
    // A refusal never echoes the URL.
    if (input.length > 12) expect(check.ok ? '' : check.problem).not.toContain(input);
  });

  test('a query parameter that only looks like a secret in part is kept (pass is a secret only alone)', () => {
    expect(checkBookmarkUrl('https://travel.example.org/?passenger=2&passport=no')).toMatchObject({ ok: true });
    expect(checkBookmarkUrl('https://travel.example.org/?pass=1')).toMatchObject({ ok: false });
  });

  test('the host of a normalized URL', () => {
    expect(bookmarkHost('https://wiki.example.org:8443/page')).toBe('wiki.example.org');
  });
});

describe('the personal-bookmark command schema', () => {
  const valid = { orgId: 'org-1', userId: 'u-1', name: 'Team wiki', url: ' https://Wiki.Example.org/team ' };

  test('gives the URL on in its normalized form and the name trimmed', () => {
    expect(personalBookmarkAddRequested.parse({ ...valid, name: '  Team wiki ' })).toEqual({ orgId: 'org-1', userId: 'u-1', name: 'Team wiki', url: 'https://wiki.example.org/team' });
  });

  test.each([['password'], ['username'], ['token'], ['credentials'], ['favicon']])('refuses an unknown field %s, naming it', (field) => {
    const parsed = personalBookmarkAddRequested.safeParse({ ...valid, [field]: 'x' });
    expect(parsed.success).toBe(false);
    expect(describeIssues(parsed.error!.issues, 'data')).toBe(
      `data: only orgId, userId, name and url are accepted (never a username, password or other credential); unexpected: ${field}`,
    );
  });

  test.each([
    ['data.name: name must not be empty', { name: '' }],
    ['data.name: name must be at most 200 characters', { name: 'a'.repeat(201) }],
    ['data.name: name must not contain control characters', { name: 'Team\nwiki' }],
    ['data.url: url must use https:// (http and other schemes are refused)', { url: 'http://wiki.example.org/' }],
    ['data.url: url must not carry a username or password (a bookmark holds no credentials)', { url: 'https://a:b@wiki.example.org/' }],
    ['data.url: url must be at most 2048 characters', { url: 'x'.repeat(2049) }],
    ['data.url: url must be a string', { url: 42 }],
    ['data.url: url must be a string', { url: undefined }],
  ])('refuses with %s', (message, change) => {
    const parsed = personalBookmarkAddRequested.safeParse({ ...valid, ...change });
    expect(parsed.success).toBe(false);
    expect(describeIssues(parsed.error!.issues, 'data')).toBe(message);
  });
});

describe('catalog app domains', () => {
  const app = { catalogAppId: 'cat-1', name: 'Wiki', signOnModes: ['SWA'] };

  test('are optional, trimmed and lower-cased, at most 100', () => {
    expect(catalogAppUpserted.parse(app).domains).toBeUndefined();
    expect(catalogAppUpserted.parse({ ...app, domains: [' Wiki.Example.ORG '] }).domains).toEqual(['wiki.example.org']);
    expect(catalogAppUpserted.safeParse({ ...app, domains: Array.from({ length: 101 }, (_, index) => `d${index}.example.org`) }).success).toBe(false);
    expect(catalogAppUpserted.safeParse({ ...app, domains: ['https://wiki.example.org'] }).success).toBe(false);
  });
});

describe('matching a bookmark host', () => {
  test('its suffixes are the host and each parent domain of two labels or more', () => {
    expect(domainSuffixes('a.b.example.org')).toEqual(['a.b.example.org', 'b.example.org', 'example.org']);
    expect(domainSuffixes('example.org')).toEqual(['example.org']);
  });

  test('a blocked domain covers itself and its subdomains, not look-alikes', () => {
    expect(blockedDomainFor('competitor.example', ['competitor.example'])).toBe('competitor.example');
    expect(blockedDomainFor('eu.shop.competitor.example', ['other.example', 'competitor.example'])).toBe('competitor.example');
    expect(blockedDomainFor('notcompetitor.example', ['competitor.example'])).toBeNull();
    expect(blockedDomainFor('competitor.example', [])).toBeNull();
  });

  const candidate = (id: string, domains: string[], signOnModes: string[] = ['SWA']): CatalogCandidate => ({ id, name: `App ${id}`, signOnModes, domains });
  const access = (overrides: Partial<CatalogAccess> = {}): CatalogAccess => ({
    allowOrgManagedApps: true,
    orgApps: [],
    assignedAppIds: new Set(),
    personalApps: new Map(),
    ...overrides,
  });

  test('a username + password app the org does not manage: add it as a personal app', () => {
    expect(catalogAppInstead('www.netflix.example', [candidate('cat-netflix', ['netflix.example'])], access())).toEqual({
      code: 'APP_IN_CATALOG',
      message: 'www.netflix.example is the site of catalog app cat-netflix (App cat-netflix); add it as a personal app instead of a bookmark',
      details: { catalogAppId: 'cat-netflix', catalogAppName: 'App cat-netflix', availableAs: 'PERSONAL_APP' },
    });
  });

  test('a personal app already added is named', () => {
    const verdict = catalogAppInstead('netflix.example', [candidate('cat-netflix', ['netflix.example'])], access({ personalApps: new Map([['cat-netflix', { id: 'pa-1', status: 'ACTIVE' }]]) }));
    expect(verdict?.details).toMatchObject({ availableAs: 'PERSONAL_APP', personalAppId: 'pa-1' });
    expect(verdict?.message).toContain('already on your dashboard as personal app pa-1');
  });

  test('an app the org offers for requests: request it instead', () => {
    const orgApp = { id: 'app-gh', label: 'GitHub', catalogAppId: 'cat-gh', status: 'ACTIVE', requestsEnabled: true };
    const verdict = catalogAppInstead('github.example', [candidate('cat-gh', ['github.example'], ['SAML'])], access({ orgApps: [orgApp] }));
    expect(verdict).toMatchObject({ code: 'APP_IN_CATALOG', details: { availableAs: 'ORG_APP', appId: 'app-gh', catalogAppId: 'cat-gh' } });
    expect(verdict?.message).toContain('request that app instead');
  });

  test('an org app already on the dashboard is named, even when it can no longer be requested', () => {
    const orgApp = { id: 'app-gh', label: 'GitHub', catalogAppId: 'cat-gh', status: 'ACTIVE', requestsEnabled: false };
    const verdict = catalogAppInstead('github.example', [candidate('cat-gh', ['github.example'])], access({ orgApps: [orgApp], assignedAppIds: new Set(['app-gh']) }));
    expect(verdict?.message).toContain('already on your dashboard as app app-gh (GitHub)');
  });

  test('no verdict (a bookmark is fine) when the catalog app is out of the user’s reach', () => {
    const notRequestable = { id: 'app-gh', label: 'GitHub', catalogAppId: 'cat-gh', status: 'ACTIVE', requestsEnabled: false };
    // Managed by the org, but not requestable: neither a request nor a personal app is possible.
    expect(catalogAppInstead('github.example', [candidate('cat-gh', ['github.example'])], access({ orgApps: [notRequestable] }))).toBeNull();
    // Requestable, but the org switch is off.
    expect(
      catalogAppInstead('github.example', [candidate('cat-gh', ['github.example'])], access({ allowOrgManagedApps: false, orgApps: [{ ...notRequestable, requestsEnabled: true }] })),
    ).toBeNull();
    // Inactive org app.
    expect(catalogAppInstead('github.example', [candidate('cat-gh', ['github.example'])], access({ orgApps: [{ ...notRequestable, status: 'INACTIVE', requestsEnabled: true }] }))).toBeNull();
    // Federated and not managed: it needs an admin, so the user may bookmark it meanwhile.
    expect(catalogAppInstead('sso.example', [candidate('cat-sso', ['sso.example'], ['SAML'])], access())).toBeNull();
    // Moved to Okta Personal: adding it again is refused, a bookmark is not.
    expect(catalogAppInstead('netflix.example', [candidate('cat-netflix', ['netflix.example'])], access({ personalApps: new Map([['cat-netflix', { id: 'pa-1', status: 'MOVED' }]]) }))).toBeNull();
    // A look-alike host.
    expect(catalogAppInstead('notnetflix.example', [candidate('cat-netflix', ['netflix.example'])], access())).toBeNull();
  });

  test('the most specific domain wins', () => {
    const verdict = catalogAppInstead('docs.example.org', [candidate('cat-a', ['example.org']), candidate('cat-b', ['docs.example.org'])], access());
    expect(verdict?.details.catalogAppId).toBe('cat-b');
  });
});

describe('credentials in URLs are kept out of dead-letter copies', () => {
  test.each([
    ['https://jane:hunter2@wiki.example.org/', 'https://[redacted]@wiki.example.org/'],
    ['see https://jane:hunter2@wiki.example.org/x and http://bob@a.example', 'see https://[redacted]@wiki.example.org/x and http://[redacted]@a.example'],
    ['https:jane:hunter2@wiki.example.org', 'https:[redacted]@wiki.example.org'],
    ['https://wiki.example.org/?user=jane&access_token=abc#id_token=def', 'https://wiki.example.org/?user=jane&access_token=[redacted]#id_token=[redacted]'],
  ])('%s becomes %s', (text, hidden) => {
    expect(withoutUrlCredentials(text)).toBe(hidden);
  });

  test.each([['https://wiki.example.org/?q=1'], ['jane@example.org'], ['mailto:jane@example.org'], ['https://travel.example.org/?passenger=2']])('%s has nothing to hide', (text) => {
    expect(withoutUrlCredentials(text)).toBeNull();
  });

  test('the copy of a bookmark command with credentials in its URL hides them and names the field', () => {
    const body = { specversion: '1.0', id: 'c-1', source: 'test', type: 'selfservice.personal-bookmark.add-requested.v1', data: { url: 'https://jane:hunter2@wiki.example.org/', name: 'Wiki' } };
    const value = Buffer.from(JSON.stringify(body));
    expect(redactedValue(value).removed).toEqual(['url (credentials in a URL)']);
    const copy = deadLetterCopy({ topic: 't', partition: 0, offset: '1', key: null, value, headers: {} }, 'INVALID_COMMAND: data.url: url must not carry a username or password', new Date());
    expect(copy.value!.toString()).not.toContain('hunter2');
    expect(copy.value!.toString()).not.toContain('jane');
    expect(JSON.parse(copy.value!.toString()).data).toEqual({ url: 'https://[redacted]@wiki.example.org/', name: 'Wiki' });
    expect(String(copy.headers['dlq-redacted'])).toBe('url (credentials in a URL)');
  });

  test('a copy with nothing to hide keeps its bytes as they were', () => {
    const value = Buffer.from('{"data": {"url": "https://wiki.example.org/"}}');
    expect(redactedValue(value)).toEqual({ value, removed: [] });
  });
});
