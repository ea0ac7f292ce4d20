/**
 * A throwaway redis-server for a serve test file: the queue tests' private server (a free
 * loopback port, its own temporary folder), removed with its data when stopped.
 */
import { freePort, startRedis as startPrivateRedis } from '../engine/queue/redis-server.js';

export { freePort };

export interface TestRedis {
  url: string;
  port: number;
  stop(): Promise<void>;
}

export async function startRedis(): Promise<TestRedis> {
  const server = await startPrivateRedis();
  return { url: server.url, port: server.port, stop: () => server.destroy() };
}
