/**
 * @module
 * TLS on both database ports (issue 12): `sslmode=require` connects (psql, pg, postgres.js) with a self-signed
 * certificate that the server makes on the first SSLRequest and keeps in its state folder across restarts;
 * `sslmode=disable` stays plain text and `prefer` now gets TLS; a client that sends data before the answer to its
 * SSLRequest is refused with 08P01, as Postgres does. Direct SSL negotiation (a ClientHello as the first bytes, as
 * Postgres 17+ accepts: node-postgres's `sslnegotiation=direct`) connects; without the ALPN protocol `postgresql` it
 * is refused with 08P01, as Postgres refuses it.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import pg from 'pg';
import postgres from 'postgres';
import { afterEach, describe, expect, it } from 'vitest';
import { startServer, type PgdevServer } from '../src/index.js';
import { useTemporaryDataHome } from './support/data-home.js';
import { runTool } from './support/tools.js';
import { errorFields, parseMessages, startupPacket } from './support/wire.js';

const dataHome = useTemporaryDataHome('pgdev-tls-');
const started: PgdevServer[] = [];

afterEach(async () => {
  await Promise.all(started.splice(0).map((server) => server.close()));
});

async function start(name: string): Promise<PgdevServer> {
  const server = await startServer({ name, port: 0, databasePort: 0, shadowDatabasePort: 0, log: () => undefined });
  started.push(server);
  return server;
}

const withSslMode = (url: string, mode: string) => url.replace('sslmode=disable', `sslmode=${mode}`);
const conninfo = (url: string) => runTool('psql', [url, '-X', '-A', '-t', '-c', 'SELECT 6 * 7', '-c', '\\conninfo']);
const SSL_LINE = /SSL connection \(protocol: TLSv1\.[23]/;

async function pgQuery(config: pg.ClientConfig, sql: string): Promise<{ rows: unknown[]; encrypted: boolean }> {
  const client = new pg.Client(config);
  client.on('error', () => undefined);
  await client.connect();
  try {
    const { rows } = await client.query(sql);
    const stream = (client as unknown as { connection: { stream: net.Socket } }).connection.stream;
    return { rows, encrypted: stream instanceof tls.TLSSocket && stream.encrypted };
  } finally {
    await client.end();
  }
}

describe('TLS', () => {
  it('psql sslmode=require, prefer and disable; the certificate is made on the first SSLRequest and kept across restarts', async () => {
    const server = await start('tls-psql');
    const folder = path.join(dataHome(), 'pgdev', 'servers', 'tls-psql');
    const certFile = path.join(folder, 'tls-cert.pem');
    const keyFile = path.join(folder, 'tls-key.pem');

    const plain = await conninfo(server.databaseUrl);
    expect(plain.status).toBe(0);
    expect(plain.stdout).toMatch(/^42\n/);
    expect(plain.stdout).not.toMatch(/SSL/);
    expect(fs.existsSync(certFile)).toBe(false); // nobody asked for TLS yet

    const required = await conninfo(withSslMode(server.databaseUrl, 'require'));
    expect(required.stderr).toBe('');
    expect(required.stdout).toMatch(/^42\n/);
    expect(required.stdout).toMatch(SSL_LINE);
    expect(fs.readFileSync(certFile, 'utf8')).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
    const certificate = fs.readFileSync(certFile, 'utf8');

    const preferred = await conninfo(withSslMode(server.databaseUrl, 'prefer'));
    expect(preferred.stdout).toMatch(SSL_LINE);
    const shadow = await conninfo(withSslMode(server.shadowDatabaseUrl, 'require'));
    expect(shadow.stdout).toMatch(SSL_LINE);

    await server.close();
    const again = await start('tls-psql');
    const restarted = await conninfo(withSslMode(again.databaseUrl, 'require'));
    expect(restarted.stdout).toMatch(SSL_LINE);
    expect(fs.readFileSync(certFile, 'utf8')).toBe(certificate);
  });

  it('pg with rejectUnauthorized:false is encrypted; verifying rejects the self-signed certificate unless it is given as the CA', async () => {
    const server = await start('tls-pg');
    const url = new URL(server.databaseUrl);
    const base = { host: 'localhost', port: Number(url.port), user: 'postgres', password: 'postgres', database: 'postgres' };

    expect(await pgQuery({ ...base, ssl: { rejectUnauthorized: false } }, 'SELECT 1 AS one')).toEqual({ rows: [{ one: 1 }], encrypted: true });
    expect(await pgQuery(base, 'SELECT 1 AS one')).toEqual({ rows: [{ one: 1 }], encrypted: false });

    const verified = await pgQuery({ ...base, ssl: true }, 'SELECT 1').catch((error: NodeJS.ErrnoException) => error);
    expect(verified).toMatchObject({ code: 'DEPTH_ZERO_SELF_SIGNED_CERT', message: 'self-signed certificate' });

    const ca = fs.readFileSync(path.join(dataHome(), 'pgdev', 'servers', 'tls-pg', 'tls-cert.pem'), 'utf8');
    expect(await pgQuery({ ...base, ssl: { ca } }, 'SELECT 2 AS two')).toEqual({ rows: [{ two: 2 }], encrypted: true });

    const sql = postgres(withSslMode(server.databaseUrl, 'require'), { max: 1 });
    try {
      expect(await sql`SELECT 3 AS three`).toEqual([{ three: 3 }]);
    } finally {
      await sql.end({ timeout: 1 });
    }
  });

  it('data sent after an SSLRequest without waiting for the answer gets 08P01 and a closed connection', async () => {
    const server = await start('tls-early');
    const sslRequest = Buffer.alloc(8);
    sslRequest.writeInt32BE(8, 0);
    sslRequest.writeInt32BE(80877103, 4);
    const received = await new Promise<Buffer>((resolve) => {
      const socket = net.connect(server.ports.database, '127.0.0.1');
      let data = Buffer.alloc(0);
      socket.on('connect', () => socket.write(Buffer.concat([sslRequest, startupPacket()])));
      socket.on('data', (chunk) => (data = Buffer.concat([data, chunk])));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(data));
    });
    const messages = parseMessages(received);
    expect(messages.map((m) => m.type)).toEqual(['E']);
    expect(errorFields(messages[0]!.body)).toMatchObject({ S: 'FATAL', C: '08P01', M: 'received unencrypted data after SSL request' });
  });

  it('direct SSL negotiation: node-postgres with sslnegotiation=direct connects, encrypted; without ALPN it gets 08P01', async () => {
    const server = await start('tls-direct');
    const url = new URL(server.databaseUrl);
    const base = { host: 'localhost', port: Number(url.port), user: 'postgres', password: 'postgres', database: 'postgres' };
    const direct = { ...base, ssl: { rejectUnauthorized: false }, sslnegotiation: 'direct' } as pg.ClientConfig;
    expect(await pgQuery(direct, 'SELECT 1 AS one')).toEqual({ rows: [{ one: 1 }], encrypted: true });
    // On the shadow port and on a created database too (the connection is routed by its startup message, inside TLS).
    await pgQuery(base, 'CREATE DATABASE direct_db');
    expect(await pgQuery({ ...direct, database: 'direct_db' }, 'SELECT current_database() AS db')).toEqual({ rows: [{ db: 'direct_db' }], encrypted: true });
    const shadow = new URL(server.shadowDatabaseUrl);
    expect(await pgQuery({ ...direct, port: Number(shadow.port), database: shadow.pathname.slice(1) }, 'SELECT 2 AS two')).toEqual({ rows: [{ two: 2 }], encrypted: true });

    const received = await new Promise<Buffer>((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port: server.ports.database, rejectUnauthorized: false });
      let data = Buffer.alloc(0);
      socket.on('secureConnect', () => socket.write(startupPacket()));
      socket.on('data', (chunk) => (data = Buffer.concat([data, chunk])));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(data));
    });
    const messages = parseMessages(received);
    expect(messages.map((m) => m.type)).toEqual(['E']);
    expect(errorFields(messages[0]!.body)).toMatchObject({
      S: 'FATAL', C: '08P01', M: 'received direct SSL connection request without ALPN protocol negotiation extension',
    });
  });
});
