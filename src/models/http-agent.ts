/**
 * The connection a download takes, as IoT Edge modules are configured: `https_proxy` / `http_proxy` /
 * `no_proxy` from the environment, and a CA bundle of the operator's (added to Node's own roots) for servers
 * or proxies with a private CA.
 */
import type { Agent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
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
