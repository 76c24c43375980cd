/**
 * @module
 * Starts a real pgdev wire gateway in front of an in-memory PGlite engine, on a free loopback port, for the
 * end-to-end gateway tests. No mocks: clients connect over TCP exactly as they would to a real Postgres.
 */
import pg from 'pg';
import { Engine } from '../../src/engine/engine.js';
import { createGateway, type Gateway, type GatewayOptions } from '../../src/gateway/gateway.js';

export type TestGatewayOptions = Partial<Omit<GatewayOptions, 'engine' | 'host' | 'port'>> & { label?: string };

export type TestGateway = {
  /** `postgres://postgres:postgres@127.0.0.1:PORT/postgres?sslmode=disable` */
  readonly url: string;
  readonly port: number;
  readonly gateway: Gateway;
  readonly engine: Engine;
  /** A connected pg client (errors after a disconnect are ignored); the caller ends it. */
  connect(): Promise<pg.Client>;
  /** Closes the gateway, then the engine. Idempotent. */
  close(): Promise<void>;
};

export async function startTestGateway(options: TestGatewayOptions = {}): Promise<TestGateway> {
  const { label = 'test', ...gatewayOptions } = options;
  const engine = await Engine.open({ label });
  let gateway: Gateway;
  try {
    gateway = await createGateway({ ...gatewayOptions, engine, host: '127.0.0.1', port: 0 });
  } catch (error) {
    await engine.close();
    throw error;
  }
  let closing: Promise<void> | undefined;
  const url = `postgres://postgres:postgres@127.0.0.1:${gateway.port}/postgres?sslmode=disable`;
  return {
    url,
    port: gateway.port,
    gateway,
    engine,
    async connect() {
      const client = new pg.Client(url);
      client.on('error', () => undefined);
      await client.connect();
      return client;
    },
    close() {
      closing ??= (async () => {
        try {
          await gateway.close();
        } finally {
          await engine.close();
        }
      })();
      return closing;
    },
  };
}
