/**
 * @module
 * A transaction opened in a pipeline (extended-protocol messages flushed but not yet synced) stays with its
 * connection (issue 20): a database command or a simple query sent before the Sync is answered as Postgres answers it
 * (25001, and ReadyForQuery says the transaction is failed), and the engine is never handed to another connection
 * while the first one's transaction is open. Raw wire messages, so the pipeline is exactly the one described.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTemporaryDataHome } from './support/data-home.js';
import { listed, startTarget, type DbTarget } from './support/databases.js';
import { WireClient, bind, dataRow, errorFields, execute, flush, parse, simpleQuery, sync, type BackendMessage } from './support/wire.js';

useTemporaryDataHome('pgdev-pipelined-transaction-');
let target: DbTarget;

beforeAll(async () => {
  target = await startTarget({ name: 'pipelined' });
});

afterAll(async () => {
  await target?.close();
});

const types = (messages: BackendMessage[]) => messages.map((m) => m.type).join('');
const status = (messages: BackendMessage[]) => String.fromCharCode(messages.at(-1)!.body[0]!);
const error = (messages: BackendMessage[]) => {
  const found = messages.find((m) => m.type === 'E');
  return found ? errorFields(found.body) : undefined;
};
const statement = (sql: string) => [parse('', sql), bind('', ''), execute('')];

/** Whether another connection's statement runs outside any transaction (its ReadyForQuery says idle). */
async function otherConnectionIsIdle(): Promise<{ status: string; inTransaction: string | null | undefined }> {
  const other = await WireClient.connect(target.port);
  try {
    // now() is the transaction's start: inside another connection's transaction it would differ from the statement's.
    const answer = await other.request(simpleQuery('SELECT now() = statement_timestamp() AS own'));
    const row = answer.find((m) => m.type === 'D');
    return { status: status(answer), inTransaction: row ? dataRow(row.body)[0] : undefined };
  } finally {
    other.end();
  }
}

describe('gateway: a transaction begun in a pipeline', { timeout: 60_000 }, () => {
  it('BEGIN, Flush, CREATE DATABASE, Sync: 25001, ReadyForQuery E, and no other connection runs inside it', async () => {
    const client = await WireClient.connect(target.port);
    try {
      const answer = await client.request(...statement('BEGIN'), flush(), ...statement('CREATE DATABASE pipelined_begin'), sync());
      expect(error(answer)).toMatchObject({ C: '25001', M: 'CREATE DATABASE cannot run inside a transaction block' });
      expect(types(answer)).toBe('12C12EZ');
      expect(status(answer)).toBe('E');
      expect(await otherConnectionIsIdle()).toEqual({ status: 'I', inTransaction: 't' });
      const rolledBack = await client.request(simpleQuery('ROLLBACK'));
      expect(status(rolledBack)).toBe('I');
    } finally {
      client.end();
    }
    expect(await listed(target.url())).not.toContain('pipelined_begin');
  });

  it('BEGIN, Flush, then a simple query CREATE DATABASE: 25001, ReadyForQuery E, and no other connection runs inside it', async () => {
    const client = await WireClient.connect(target.port);
    try {
      const answer = await client.request(...statement('BEGIN'), flush(), simpleQuery('CREATE DATABASE pipelined_query'));
      expect(error(answer)).toMatchObject({ C: '25001', M: 'CREATE DATABASE cannot run inside a transaction block' });
      expect(types(answer)).toBe('12CEZ');
      expect(status(answer)).toBe('E');
      expect(await otherConnectionIsIdle()).toEqual({ status: 'I', inTransaction: 't' });
      expect(status(await client.request(simpleQuery('ROLLBACK')))).toBe('I');
    } finally {
      client.end();
    }
    expect(await listed(target.url())).not.toContain('pipelined_query');
  });

  it('BEGIN, Flush, then a simple query: the transaction is still open (T), and other connections wait for it', async () => {
    const client = await WireClient.connect(target.port);
    try {
      const answer = await client.request(...statement('BEGIN'), flush(), simpleQuery('CREATE TABLE pipelined_t (x int)'));
      expect(types(answer)).toBe('12CCZ');
      expect(status(answer)).toBe('T');
      const other = await WireClient.connect(target.port);
      try {
        // The other connection's query waits until the transaction ends, then sees its outcome.
        other.send(simpleQuery("SELECT count(*) FROM pg_tables WHERE tablename = 'pipelined_t'"));
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(status(await client.request(simpleQuery('ROLLBACK')))).toBe('I');
        const seen = await other.untilReady();
        expect(seen.filter((m) => m.type === 'D').map((m) => dataRow(m.body))).toEqual([['0']]);
        expect(status(seen)).toBe('I');
      } finally {
        other.end();
      }
    } finally {
      client.end();
    }
  });

  it('SELECT 1, Flush, CREATE DATABASE, Sync (no BEGIN): 25001 for a pipeline, ReadyForQuery I', async () => {
    const client = await WireClient.connect(target.port);
    try {
      const answer = await client.request(...statement('SELECT 1'), flush(), ...statement('CREATE DATABASE pipelined_plain'), sync());
      expect(error(answer)).toMatchObject({ C: '25001', M: 'CREATE DATABASE cannot be executed within a pipeline' });
      expect(status(answer)).toBe('I');
      expect(await otherConnectionIsIdle()).toEqual({ status: 'I', inTransaction: 't' });
    } finally {
      client.end();
    }
    expect(await listed(target.url())).not.toContain('pipelined_plain');
  });

  it('a lock call after a flushed BEGIN cannot wait (its pipeline cannot be run again): 55P03 at once, ReadyForQuery E', async () => {
    const holder = await WireClient.connect(target.port);
    const client = await WireClient.connect(target.port);
    try {
      await holder.request(simpleQuery('SELECT pg_advisory_lock(2020)'));
      const answer = await client.request(...statement('BEGIN'), flush(), ...statement('SELECT pg_advisory_lock(2020)'), sync());
      expect(error(answer)).toMatchObject({ C: '55P03', M: expect.stringMatching(/^could not obtain lock on advisory lock/) });
      expect(status(answer)).toBe('E');
      expect(status(await client.request(simpleQuery('ROLLBACK')))).toBe('I');
      await holder.request(simpleQuery('SELECT pg_advisory_unlock(2020)'));
    } finally {
      client.end();
      holder.end();
    }
  });
});
