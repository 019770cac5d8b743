/**
 * The bounds of the public contract. Every inbound string and list has a maximum, and a record has a
 * maximum size, so that no producer can make the backend store, log or echo more than this. The
 * README's contract section lists the same numbers.
 */
export const Limits = {
  /** Default maximum size of an inbound record (key + value + headers), in bytes; `MAX_EVENT_BYTES`. */
  eventBytes: 512 * 1024,
  /** The largest record the backend itself writes to the dead-letter topic (broker default: 1 MiB). */
  deadLetterBytes: 900 * 1024,
  headerCount: 32,
  headerNameChars: 64,
  headerValueBytes: 1024,
  /** JSON nesting depth of a command's body. */
  jsonDepth: 16,

  ceId: 200,
  ceSource: 512,
  ceType: 128,
  ceSubject: 256,

  id: 128,
  name: 200,
  email: 254,
  domain: 253,

  comment: 1000,
  reason: 1000,
  noteForRequester: 500,
  /** A delegation's reason (`selfservice.delegation.set-requested.v1`). */
  delegationReason: 500,
  technicalContactMessage: 2000,

  emailDomains: 100,
  blockedPersonalDomains: 1000,
  adminRoles: 3,
  signOnModes: 7,
  groupMembers: 10_000,
  approverSteps: 100,
  notificationOthers: 20,
  fallbackApprovers: 100,
  personalAppIds: 100,
  adminAppIds: 1000,
  escalationApprovers: 20,
  holidays: 366,
  timeZone: 64,
  /** A personal bookmark's URL (https), as given and once normalized. */
  url: 2048,
  /** `domains` of a catalog app (the sites it runs on, for telling bookmarks apart from catalog apps). */
  catalogAppDomains: 100,
  appUserAttributes: 50,
  attributeValue: 500,
  /** Ten years: the longest time-bound access. */
  accessDays: 3650,

  /** A text that a rejection or a dead-letter header echoes (an error description) is cut to this. */
  echoedText: 1000,
} as const;

/**
 * Characters refused in ids, names and envelope attributes: C0 and C1 controls, DEL, line and
 * paragraph separators, and lone UTF-16 surrogates (not valid Unicode text).
 */
// eslint-disable-next-line no-control-regex -- control characters are exactly what this refuses
export const FORBIDDEN_IN_NAMES = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\ud800-\udfff]/u;

/** Free text may keep tab, line feed and carriage return; every other control character is refused. */
// eslint-disable-next-line no-control-regex -- control characters are exactly what this refuses
export const FORBIDDEN_IN_TEXT = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\ud800-\udfff]/u;

/** Object keys that could reach a prototype when a body is copied into an object. */
export const PROTOTYPE_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** Cuts a text to `max` characters (code units), marking the cut, so echoes stay bounded. */
export function bounded(text: string, max: number = Limits.echoedText): string {
  if (text.length <= max) return text;
  return `${text.slice(0, Math.max(0, max - 15))}… (${text.length - max + 15} more)`;
}
