/**
 * What counts as a secret in a command: fields named like one, and credentials written into a URL
 * (`https://user:pass@host`, `?access_token=...`). Used to refuse them (a personal bookmark's URL) and
 * to keep them out of dead-letter copies (`dead-letters.ts`). Pure, no imports of the project.
 */

/** Field names that hold secrets: never kept in a dead-letter copy, a log line or a result. */
export const SECRET_FIELD = /^pass$|pass(word|wd|phrase)|secret|token|credential|api[-_]?key|private[-_]?key/i;

/**
 * A URL's userinfo (`user:pass@`) after a scheme that has an authority, with or without its slashes
 * (the WHATWG parser reads `https:user:pass@host` as credentials too).
 */
const URL_USERINFO = /\b((?:https?|ftps?|wss?):[\\/]{0,2})[^\s\\/?#@]+@/gi;

/** A query or fragment parameter: its separator, name and value. */
const URL_PARAMETER = /([?&#;])([^=&#;\s]{1,200})=([^&#;\s]*)/g;

function decoded(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return text;
  }
}

/** True when a query or fragment parameter of this name carries a secret (`token`, `api_key`, `password`, ...). */
export function isSecretParameter(name: string): boolean {
  return SECRET_FIELD.test(decoded(name));
}

/**
 * The text with the credentials of every URL in it hidden: userinfo becomes `[redacted]@`, the value of a
 * parameter named like a secret `[redacted]`. Null when there is nothing to hide.
 */
export function withoutUrlCredentials(text: string): string | null {
  if (!text.includes('@') && !text.includes('=')) return null;
  let changed = false;
  const hidden = text
    .replace(URL_USERINFO, (_whole, scheme: string) => {
      changed = true;
      return `${scheme}[redacted]@`;
    })
    .replace(URL_PARAMETER, (whole, separator: string, name: string, value: string) => {
      if (value === '' || value === '[redacted]' || !isSecretParameter(name)) return whole;
      changed = true;
      return `${separator}${name}=[redacted]`;
    });
  return changed ? hidden : null;
}
