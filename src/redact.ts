/**
 * Secrets that travel in URIs (camera passwords, blob SAS tokens) never reach a log line, an error message or
 * the twin: URIs are shown without user info or query string, and free text that may quote the URI (ffmpeg's
 * messages) has those parts removed too.
 */

/** A URI shown without its query string (blob SAS tokens live there) or user info. */
export function redactUri(uri: string): string {
  try {
    const url = new URL(uri);
    url.username = '';
    url.password = '';
    url.search = '';
    return url.toString();
  } catch {
    return '(unparseable URI)';
  }
}

/**
 * `text` with every secret part of `uri` (user and password together, the password, the query; each as written
 * or percent-decoded) replaced by `***`. A user name alone is no secret, and replacing a short one everywhere
 * would garble the text.
 */
export function redactText(text: string, uri: string): string {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return text.split(uri).join('***');
  }
  const secrets = [url.password && `${url.username}:${url.password}`, url.password, url.search.slice(1)]
    .filter((part) => part.length > 0)
    .flatMap((part) => [part, safeDecode(part)])
    // The longest first, so that a secret containing another is replaced whole.
    .sort((a, b) => b.length - a.length);
  return secrets.reduce((shown, secret) => shown.split(secret).join('***'), text);
}

function safeDecode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}
