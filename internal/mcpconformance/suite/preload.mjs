// preload.mjs is loaded into the official MCP conformance suite with
// node --import (make mcp-conformance writes it beside the suite's
// node_modules). It changes how the suite reaches the network, never what
// it checks; each change is switched on by an environment variable that
// internal/mcpconformance sets:
//
// - always: a server the suite starts on an ephemeral port without naming
//   a host (listen(0): every interface) listens on 127.0.0.1 only, bound at
//   once, since the suite reads address().port right after listen();
// - MCPC_HOSTS ({"name:port": "127.0.0.1:port", ...}): connections to the
//   stack's names (mcp.example.com:443, ...) go to the loopback ports that
//   serve them, keeping the name for TLS (SNI and the certificate check)
//   and in the Host header, as a resolver would;
// - MCPC_ORIGIN (https://host:port) with MCPC_BEARER: requests to that
//   origin carry the MCP client's token, as a client of the proxy does; the
//   suite has no option for one;
// - MCPC_ORIGIN alone: requests to that https origin are adapted to HTTPS
//   where the suite assumes plain http: TLS names the server in the URL
//   (not a Host header the suite sets on purpose), an Origin header
//   http://X the suite derives from the host becomes https://X (the same
//   origin over HTTPS), and the requests the suite sends with node:http go
//   through node:https.
//
// The stack's CA comes from NODE_EXTRA_CA_CERTS.
import net from 'node:net';
import http from 'node:http';
import https from 'node:https';
import { Agent, buildConnector, setGlobalDispatcher } from 'undici';

// Loopback only.
const { TCP, constants: tcpConstants } = process.binding('tcp_wrap');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (ephemeralEverywhere(args)) {
    const handle = new TCP(tcpConstants.SERVER);
    const err = handle.bind('127.0.0.1', 0);
    if (err) {
      throw new Error(`preload: binding 127.0.0.1:0 failed (${err})`);
    }
    const cb = args.find((a) => typeof a === 'function');
    return cb ? listen.call(this, handle, cb) : listen.call(this, handle);
  }
  return listen.apply(this, args);
};

// ephemeralEverywhere reports whether listen's arguments ask for an
// ephemeral port without a host: listen(), listen(0[, cb]),
// listen({port: 0}[, cb]).
function ephemeralEverywhere(args) {
  const [first, second] = args;
  if (first === undefined || typeof first === 'function') {
    return true;
  }
  if (first === 0 || first === '0') {
    return typeof second !== 'string';
  }
  if (first && typeof first === 'object' && !(first instanceof net.Socket) && !first._handle && first.fd === undefined && first.path === undefined) {
    return (first.port === undefined || first.port === 0 || first.port === '0') && first.host === undefined;
  }
  return false;
}

const hosts = process.env.MCPC_HOSTS ? JSON.parse(process.env.MCPC_HOSTS) : {};
const target = process.env.MCPC_ORIGIN ? new URL(process.env.MCPC_ORIGIN) : null;
const bearer = process.env.MCPC_BEARER || '';

function isIP(name) {
  return net.isIP(name.replace(/^\[|\]$/g, '')) !== 0;
}

function defaultPort(protocol) {
  return protocol === 'https:' ? '443' : '80';
}

// sameOrigin reports whether protocol, hostname and port name the target.
function sameOrigin(protocol, hostname, port) {
  return target !== null && protocol === target.protocol && hostname === target.hostname &&
    String(port || defaultPort(protocol)) === (target.port || defaultPort(target.protocol));
}

// fixHeaders returns headers (an object, a flat [k, v, ...] list or a list
// of pairs) with the bearer added and an http:// Origin made https://.
function fixHeaders(headers) {
  const change = (name, value) => {
    if (name.toLowerCase() === 'origin' && typeof value === 'string' && value.startsWith('http://') && target.protocol === 'https:') {
      return 'https://' + value.slice('http://'.length);
    }
    return value;
  };
  const hasAuth = (names) => names.some((n) => n.toLowerCase() === 'authorization');
  if (Array.isArray(headers)) {
    if (headers.length > 0 && Array.isArray(headers[0])) {
      const out = headers.map(([k, v]) => [k, change(k, v)]);
      if (bearer && !hasAuth(out.map(([k]) => k))) {
        out.push(['authorization', `Bearer ${bearer}`]);
      }
      return out;
    }
    const out = [];
    for (let i = 0; i + 1 < headers.length; i += 2) {
      out.push(headers[i], change(String(headers[i]), headers[i + 1]));
    }
    if (bearer && !hasAuth(out.filter((_, i) => i % 2 === 0).map(String))) {
      out.push('authorization', `Bearer ${bearer}`);
    }
    return out;
  }
  const out = {};
  for (const [k, v] of Object.entries(headers || {})) {
    out[k] = change(k, v);
  }
  if (bearer && !hasAuth(Object.keys(out))) {
    out.authorization = `Bearer ${bearer}`;
  }
  return out;
}

// undici (fetch, undici.request, the MCP SDK's transports).
const connect = buildConnector({});
const agent = new Agent({
  connect(opts, callback) {
    const port = String(opts.port || defaultPort(opts.protocol));
    const mapped = hosts[`${opts.hostname}:${port}`];
    const o = { ...opts };
    if (opts.protocol === 'https:') {
      // TLS names the server in the URL, not a Host header the request set:
      // its name, or for an IP address no name (the certificate is then
      // checked against the address).
      o.servername = isIP(opts.hostname) ? '' : opts.hostname;
    }
    if (mapped) {
      const [addr, p] = [mapped.slice(0, mapped.lastIndexOf(':')), mapped.slice(mapped.lastIndexOf(':') + 1)];
      o.hostname = addr;
      o.host = mapped;
      o.port = p;
    }
    return connect(o, callback);
  },
});
setGlobalDispatcher(agent.compose((dispatch) => (opts, handler) => {
  if (target !== null) {
    const origin = new URL(String(opts.origin));
    if (sameOrigin(origin.protocol, origin.hostname, origin.port)) {
      return dispatch({ ...opts, headers: fixHeaders(opts.headers) }, handler);
    }
  }
  return dispatch(opts, handler);
}));

// node:http requests to the target go through node:https when it is an
// https origin, with the bearer and the Origin fixed.
const httpRequest = http.request;
http.request = function (input, ...rest) {
  if (target === null || typeof input !== 'object' || input === null || input instanceof URL) {
    return httpRequest.call(this, input, ...rest);
  }
  const hostname = input.hostname || (input.host || 'localhost').replace(/:\d+$/, '');
  if (!sameOrigin(target.protocol, hostname, input.port)) {
    return httpRequest.call(this, input, ...rest);
  }
  const o = { ...input, headers: fixHeaders(input.headers) };
  if (target.protocol !== 'https:') {
    return httpRequest.call(this, o, ...rest);
  }
  o.servername = isIP(hostname) ? '' : hostname;
  return https.request(o, ...rest);
};
