import { FORBIDDEN_IN_NAMES, Limits } from './limits';
import { isSecretParameter } from './secrets';

/**
 * The URL of a personal bookmark (`selfservice.personal-bookmark.add-requested.v1`), as the contract
 * accepts it: parsed with the WHATWG URL parser (as browsers do), https only, a public domain name as
 * host, and no credentials of any kind. A bookmark is stored and announced in the parser's normalized
 * form (`href`: lower-case host, punycode, no default port, `/` for an empty path), so the same page
 * written twice is one bookmark. Pure; each refusal names what is wrong without echoing the URL.
 */

export type BookmarkUrlCheck = { ok: true; url: string; host: string } | { ok: false; problem: string };

/** A domain name: dot-separated labels of letters, digits and inner hyphens, a top-level label of letters (or punycode). */
const DOMAIN_NAME = /^(?=.{1,253}$)((?!-)[a-z0-9-]{1,63}(?<!-)\.)+([a-z]{2,63}|xn--[a-z0-9-]{1,59})$/;
/** What the WHATWG parser makes of every IPv4 form (`0x7f.1`, `2130706433`, ...): dotted decimal. */
const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

function parameterNames(search: string): string[] {
  return [...new URLSearchParams(search).keys()];
}

/** Checks a bookmark URL; on success gives its normalized form and its host. */
export function checkBookmarkUrl(input: string): BookmarkUrlCheck {
  const refuse = (problem: string): BookmarkUrlCheck => ({ ok: false, problem: `url ${problem}` });
  if (input.length === 0) return refuse('must not be empty');
  if (input.length > Limits.url) return refuse(`must be at most ${Limits.url} characters`);
  if (FORBIDDEN_IN_NAMES.test(input)) return refuse('must not contain control characters');
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    return refuse('must be an absolute URL such as https://www.example.com/page');
  }
  if (url.protocol !== 'https:') return refuse('must use https:// (http and other schemes are refused)');
  if (url.username !== '' || url.password !== '') return refuse('must not carry a username or password (a bookmark holds no credentials)');
  const host = url.hostname;
  if (host === '') return refuse('must name a host');
  if (host.startsWith('[') || IPV4.test(host)) return refuse('must name its host by a domain name, not an IP address');
  if (host === 'localhost' || host.endsWith('.localhost')) return refuse('must not point to localhost');
  if (!DOMAIN_NAME.test(host)) return refuse('must name a host by its full domain name, such as www.example.com');
  const parameters = [...parameterNames(url.search), ...parameterNames(url.hash.slice(1))];
  if (parameters.some(isSecretParameter)) {
    return refuse('must not carry credentials (a query or fragment parameter named like a secret: password, token, api key, ...)');
  }
  if (url.href.length > Limits.url) return refuse(`must be at most ${Limits.url} characters once normalized (percent-encoded)`);
  return { ok: true, url: url.href, host };
}

/** The host of a URL that passed `checkBookmarkUrl` (lower case, punycode). */
export function bookmarkHost(url: string): string {
  return new URL(url).hostname;
}
