import {
  distinctIds,
  emailDomainOf,
  isDomainOrSubdomain,
  moveVerdict,
  personalSignOnProblem,
  type MoveCandidate,
  type MovePolicy,
} from '../../activities/personal-apps';

describe('which catalog apps a user may add as a personal app', () => {
  test('an app whose only sign-on is username + password (SWA) can be added', () => {
    expect(personalSignOnProblem({ id: 'c1', signOnModes: ['SWA'] })).toBeNull();
  });

  test('HTTP basic authentication is username + password too', () => {
    expect(personalSignOnProblem({ id: 'c1', signOnModes: ['SWA', 'BASIC_AUTH'] })).toBeNull();
  });

  test.each([[['SAML']], [['OIDC']], [['WS_FEDERATION']], [['SWA', 'SAML']]])(
    'an app that signs on with %j needs federation',
    (signOnModes) => {
      expect(personalSignOnProblem({ id: 'c1', signOnModes })).toMatchObject({ code: 'APP_NEEDS_FEDERATION' });
    },
  );

  test.each([[['SECURE_PASSWORD_STORE']], [['BOOKMARK']], [[]]])('an app with %j needs an admin to configure it', (signOnModes) => {
    expect(personalSignOnProblem({ id: 'c1', signOnModes })).toMatchObject({ code: 'APP_NEEDS_ADMIN_CONFIGURATION' });
  });

  test('the refusal names the app and the sign-on that is missing', () => {
    expect(personalSignOnProblem({ id: 'salesforce', signOnModes: ['SAML'] })?.message).toMatch(/salesforce.*SAML/);
  });
});

describe('whether a personal app may move to Okta Personal', () => {
  const policy: MovePolicy = {
    userId: 'u-1',
    orgEmailDomains: ['acme.example'],
    blockedPersonalDomains: ['competitor.example'],
    orgAppIds: new Set(['org-app-1']),
  };
  const app = (overrides: Partial<MoveCandidate> = {}): MoveCandidate => ({
    id: 'pa-1',
    userId: 'u-1',
    username: 'jane@personal.example',
    status: 'ACTIVE',
    ...overrides,
  });

  test('a personal app the user added with a personal email address moves', () => {
    expect(moveVerdict('pa-1', app(), policy)).toEqual({ personalAppId: 'pa-1', outcome: 'MOVED' });
  });

  test('an org-managed app is never eligible', () => {
    expect(moveVerdict('org-app-1', null, policy)).toMatchObject({ outcome: 'NOT_ELIGIBLE', reason: 'ORG_MANAGED_APP' });
  });

  test('an unknown id is not eligible', () => {
    expect(moveVerdict('pa-404', null, policy)).toMatchObject({ outcome: 'NOT_ELIGIBLE', reason: 'PERSONAL_APP_NOT_FOUND' });
  });

  test("another user's personal app is not eligible", () => {
    expect(moveVerdict('pa-1', app({ userId: 'u-2' }), policy)).toMatchObject({ reason: 'NOT_ADDED_BY_USER' });
  });

  test('an app already moved is not moved again', () => {
    expect(moveVerdict('pa-1', app({ status: 'MOVED' }), policy)).toMatchObject({ reason: 'ALREADY_MOVED' });
  });

  test('an app without a username does not use a personal email address', () => {
    expect(moveVerdict('pa-1', app({ username: null }), policy)).toMatchObject({ reason: 'NO_USERNAME' });
  });

  test('a username that is not an email address is not a personal email address', () => {
    expect(moveVerdict('pa-1', app({ username: 'jane' }), policy)).toMatchObject({ reason: 'USERNAME_NOT_AN_EMAIL' });
  });

  test("a username on the org's email domain, or a subdomain of it, stays with the org", () => {
    expect(moveVerdict('pa-1', app({ username: 'jane@ACME.example' }), policy)).toMatchObject({ reason: 'ORG_EMAIL_DOMAIN' });
    expect(moveVerdict('pa-1', app({ username: 'jane@eu.acme.example' }), policy)).toMatchObject({ reason: 'ORG_EMAIL_DOMAIN' });
  });

  test('a lookalike domain that merely ends with the org domain is personal', () => {
    expect(moveVerdict('pa-1', app({ username: 'jane@notacme.example' }), policy)).toMatchObject({ outcome: 'MOVED' });
  });

  test('a username on a blocked domain is not eligible', () => {
    expect(moveVerdict('pa-1', app({ username: 'jane@competitor.example' }), policy)).toMatchObject({ reason: 'BLOCKED_DOMAIN' });
  });

  test('every refusal explains itself', () => {
    expect(moveVerdict('pa-1', app({ username: 'jane@acme.example' }), policy).detail).toMatch(/org's email domain acme\.example/);
  });
});

describe('email addresses and domains', () => {
  test.each([
    ['jane@personal.example', 'personal.example'],
    [' Jane@Mail.Personal.Example ', 'mail.personal.example'],
    ['jane', null],
    ['jane@localhost', null],
    ['a@b@c.example', null],
    ['', null],
    [null, null],
  ])('the domain of %j is %j', (username, domain) => {
    expect(emailDomainOf(username)).toBe(domain);
  });

  test('a subdomain belongs to its parent, a lookalike does not', () => {
    expect(isDomainOrSubdomain('acme.example', 'acme.example')).toBe(true);
    expect(isDomainOrSubdomain('eu.acme.example', 'acme.example')).toBe(true);
    expect(isDomainOrSubdomain('notacme.example', 'acme.example')).toBe(false);
  });

  test('a move lists each app once, in the order the user gave', () => {
    expect(distinctIds(['b', 'a', 'b', 'c', 'a'])).toEqual(['b', 'a', 'c']);
  });
});
