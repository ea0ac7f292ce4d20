/**
 * Sending the malformed requests of serve-malformed-cases.ts over a real loopback connection: the URL
 * byte for byte (fetch would normalise `..` away), or raw bytes no HTTP client would send.
 */
import http from 'node:http';
import net from 'node:net';
import type { MalformedRequest, WireRequest } from './serve-malformed-cases.js';

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  body: string;
}

/** Sends a case's request over a real connection to `base` (`http://127.0.0.1:PORT`). */
export function send(base: string, request: MalformedRequest | WireRequest): Promise<RawResponse> {
  return 'wire' in request ? sendWire(base, request.wire) : sendRaw(base, request);
}

/** Writes `bytes` on a fresh connection, half-closes it, and reads the answer until it closes. */
export function sendWire(base: string, bytes: string): Promise<RawResponse> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect(Number(port), hostname, () => socket.end(bytes, 'latin1'));
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const split = text.indexOf('\r\n\r\n');
      const head = split < 0 ? text : text.slice(0, split);
      const headers: RawResponse['headers'] = {};
      for (const line of head.split('\r\n').slice(1)) {
        const colon = line.indexOf(':');
        if (colon > 0)
          headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      resolve({
        status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0),
        headers,
        body: split < 0 ? '' : text.slice(split + 4),
      });
    });
  });
}

/**
 * Sends `request` over a real connection to `base` (`http://127.0.0.1:PORT`), the URL byte for
 * byte (fetch would normalise `..` away). A server that answers before reading the whole body
 * (413) may reset the connection while the body is still being written: the answer counts.
 */
export function sendRaw(base: string, request: MalformedRequest): Promise<RawResponse> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = http.request(
      {
        host: hostname,
        port,
        method: request.method,
        path: request.url,
        headers: {
          ...request.headers,
          ...(request.payload !== undefined
            ? { 'content-length': String(Buffer.byteLength(request.payload)) }
            : {}),
        },
        agent: false,
      },
      (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', (e) => {
      if (!answered) reject(e);
    });
    req.end(request.payload);
  });
}
