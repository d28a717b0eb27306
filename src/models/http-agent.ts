/**
 * The connection a download takes, as IoT Edge modules are configured: `https_proxy` / `http_proxy` /
 * `no_proxy` from the environment, and a CA bundle of the operator's (added to Node's own roots) for servers
 * or proxies with a private CA.
 */
import { get as httpGet, type Agent, type ClientRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, get as httpsGet } from 'node:https';
import { rootCertificates } from 'node:tls';
import { HttpProxyAgent } from 'http-proxy-agent';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { getProxyForUrl } from 'proxy-from-env';

export interface NetworkSettings {
  /** Extra trusted certificates (PEM), on top of Node's roots. */
  ca?: Buffer;
}

export function agentFor(uri: string, network: NetworkSettings = {}): Agent | undefined {
  const tls = network.ca ? { ca: [...rootCertificates, network.ca.toString('utf8')] } : {};
  const secure = uri.toLowerCase().startsWith('https:');
  const proxy = getProxyForUrl(uri);
  if (proxy && secure) {
    const agent = new HttpsProxyAgent(proxy, tls);
    // Its constructor options reach only the proxy's socket; Node merges `agent.options` into each request's
    // options, which is what the tunnelled TLS to the server is made with.
    Object.assign(agent.options, tls);
    return agent;
  }
  if (proxy) return new HttpProxyAgent(proxy, tls);
  return secure && network.ca ? new HttpsAgent(tls) : undefined;
}

/** Redirects followed before a request gives up, as fetch does. */
const MAX_REDIRECTS = 10;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/**
 * GETs `uri` with Node's own client, through the agent `agentFor` picks for each hop, following redirects (model
 * hosts hand out signed URLs that way). The answer's body is left unread, for the caller to take as the socket
 * delivers it. `onRequest` sees each request made, so a caller's stall timer can destroy the current one.
 */
export function getFollowingRedirects(uri: string, headers: Record<string, string>, network: NetworkSettings | undefined, onRequest: (request: ClientRequest) => void): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    // A bad URL or a protocol Node cannot get (a redirect to ftp:) rejects, never throws from an event.
    const follow = (location: string, base: URL | undefined, left: number) => {
      try {
        const url = new URL(location, base);
        const get = url.protocol === 'https:' ? httpsGet : httpGet;
        const request = get(url, { agent: agentFor(url.href, network), headers }, (response) => {
          const next = response.headers.location;
          if (!REDIRECTS.has(response.statusCode ?? 0) || !next) return resolve(response);
          response.resume();
          if (left === 0) return reject(new Error(`more than ${MAX_REDIRECTS} redirects`));
          follow(next, url, left - 1);
        });
        // Kept for the request's life: a socket error after the answer came must not be an unhandled event.
        request.on('error', reject);
        onRequest(request);
      } catch (error) {
        reject(error);
      }
    };
    follow(uri, undefined, MAX_REDIRECTS);
  });
}
