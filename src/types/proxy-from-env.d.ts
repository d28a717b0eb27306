// proxy-from-env ships no types; this is its one function.
declare module 'proxy-from-env' {
  /** The proxy URL for `url` from http_proxy / https_proxy / all_proxy, honouring no_proxy; '' for none. */
  export function getProxyForUrl(url: string | URL): string;
}
