/**
 * @module
 * Interrupts reach a running statement (issue 19): an Engine opened here, and a worker thread that interrupts it
 * through its shared memory while this thread is busy inside PGlite. The worker runs the built module
 * (`dist/engine/interrupts.js`): run `npm run build` first.
 */
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine, EngineSession, type Lease } from './engine.js';
import { interrupt, runningSession, type InterruptKind, type InterruptTarget } from './interrupts.js';
import { Frontend, eachMessage, int16, int32, message, query, readError, readRows, sync } from './protocol.js';
import { shareMemoryImport } from './wasm.js';

const INTERRUPTS_MODULE = new URL('../../dist/engine/interrupts.js', import.meta.url).href;

// The worker: on request, waits until the session named runs a statement, then `after` ms, then interrupts it and
// answers when (epoch milliseconds); or starts/stops watching the engine's timeouts.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const target = workerData;
import(${JSON.stringify(INTERRUPTS_MODULE)}).then(({ interrupt, runningSession, watchTimeouts }) => {
  let unwatch;
  parentPort.on('message', (request) => {
    if (request.watch !== undefined) {
      unwatch?.();
      unwatch = request.watch ? watchTimeouts(target) : undefined;
      parentPort.postMessage({ id: request.id });
      return;
    }
    const fire = () => {
      const at = performance.timeOrigin + performance.now();
      parentPort.postMessage({ id: request.id, at, delivered: interrupt(target, request.kind, request.session) });
    };
    const whenRunning = () => (runningSession(target) === request.session ? setTimeout(fire, request.after) : setTimeout(whenRunning, 1));
    whenRunning();
  });
  parentPort.postMessage({ id: 0 });
});
`;

type Reply = { id: number; at?: number; delivered?: boolean };

class Interrupter {
  readonly #worker: Worker;
  readonly #pending = new Map<number, (reply: Reply) => void>();
  #nextId = 1;
  readonly ready: Promise<Reply>;

  constructor(target: InterruptTarget) {
    this.#worker = new Worker(WORKER_SOURCE, { eval: true, workerData: target });
    this.ready = new Promise((resolve) => this.#pending.set(0, resolve));
    this.#worker.on('message', (reply: Reply) => {
      this.#pending.get(reply.id)?.(reply);
      this.#pending.delete(reply.id);
    });
  }

  /** Interrupts the statement of `session` `after` ms after it starts running. */
  schedule(kind: InterruptKind, session: number, after: number): Promise<Reply> {
    return this.#request({ kind, session, after });
  }

  watch(on: boolean): Promise<Reply> {
    return this.#request({ watch: on });
  }

  #request(request: object): Promise<Reply> {
    const id = this.#nextId++;
    const reply = new Promise<Reply>((resolve) => this.#pending.set(id, resolve));
    this.#worker.postMessage({ id, ...request });
    return reply;
  }

  terminate(): Promise<number> {
    return this.#worker.terminate();
  }
}

const now = () => performance.timeOrigin + performance.now();

function percentile(values: number[], share: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(share * sorted.length) - 1)]!;
}

describe('interrupts', () => {
  let engine: Engine;
  let session: EngineSession;
  let lease: Lease;
  let interrupter: Interrupter;

  const run = (sql: string) => {
    const output = lease.exec(query(sql));
    const error = readError(output);
    return error ? { error: `${error.code} ${error.message}` } : { rows: readRows(output) };
  };

  /** Runs `sql` with an interrupt scheduled `after` ms into it; returns the answer and the ms from the interrupt. */
  async function interrupted(sql: string, kind: InterruptKind, after: number) {
    const reply = interrupter.schedule(kind, session.id, after);
    const answer = run(sql);
    const end = now();
    const { at, delivered } = await reply;
    return { ...answer, delivered, latency: end - at! };
  }

  beforeAll(async () => {
    engine = await Engine.open({ label: 'interrupts' });
    session = new EngineSession();
    lease = engine.tryAcquire(session)!;
    interrupter = new Interrupter(engine.interruptTarget);
    await interrupter.ready;
  });

  afterAll(async () => {
    await interrupter?.terminate();
    lease?.release();
    await engine?.close();
  });

  it('cancels a sleeping and a CPU-bound statement from another thread, and the engine answers next', async () => {
    const latencies: Record<string, number[]> = { sleeping: [], cpu: [] };
    const statements = { sleeping: 'SELECT pg_sleep(5)', cpu: 'SELECT count(*) FROM generate_series(1, 30000000)' };
    for (let i = 0; i < 20; i++) {
      for (const [name, sql] of Object.entries(statements)) {
        const result = await interrupted(sql, 'cancel', 50);
        expect(result).toMatchObject({ error: '57014 canceling statement due to user request', delivered: true });
        latencies[name]!.push(result.latency);
        expect(run('SELECT 1')).toEqual({ rows: [['1']] });
      }
    }
    for (const [name, values] of Object.entries(latencies)) {
      console.log(`cancel ${name}: p50 ${percentile(values, 0.5).toFixed(1)} ms, p99 ${percentile(values, 0.99).toFixed(1)} ms (20 runs: ${values.map((value) => value.toFixed(1)).join(" ")})`);
      expect(percentile(values, 0.5)).toBeLessThan(2_000); // today: a few ms; without interrupts: the whole statement
    }
  });

  it('leaves an interrupted transaction failed, as Postgres does', async () => {
    run('BEGIN');
    expect(await interrupted('SELECT pg_sleep(5)', 'cancel', 20)).toMatchObject({ error: '57014 canceling statement due to user request' });
    expect(run('SELECT 1')).toEqual({ error: '25P02 current transaction is aborted, commands ignored until end of transaction block' });
    run('ROLLBACK');
  });

  it('cancels nothing between statements, nor the statement of another session', async () => {
    expect(runningSession(engine.interruptTarget)).toBe(0);
    expect(interrupt(engine.interruptTarget, 'cancel')).toBe(false);
    expect(interrupt(engine.interruptTarget, 'terminate', session.id)).toBe(false);
    expect(run('SELECT pg_sleep(0.05)')).toEqual({ rows: [['']] });
    const other = interrupter.schedule('cancel', session.id + 1, 0); // never runs: the worker waits for it
    expect(run('SELECT pg_sleep(0.2)')).toEqual({ rows: [['']] });
    void other;
  });

  it('cancels a statement that begins after its cancel came (kept for it), with Postgres\' error; its transaction fails', () => {
    run('BEGIN');
    // Nothing runs: the cancel is kept for the session's next statement (pipelined, or queued for the engine). Postgres
    // drops a cancel it finds pending as it reads a command, so raising it as the statement begins stopped nothing.
    expect(interrupt(engine.interruptTarget, 'cancel', session.id)).toBe(false);
    const start = now();
    expect(run('SELECT pg_sleep(2)')).toEqual({ error: '57014 canceling statement due to user request' });
    expect(now() - start).toBeLessThan(1_000);
    expect(run('SELECT 1')).toEqual({ error: '25P02 current transaction is aborted, commands ignored until end of transaction block' });
    run('ROLLBACK');
    expect(run('SELECT 1')).toEqual({ rows: [['1']] }); // taken once
  });

  it('cancels the first statement of a pipeline that begins after its cancel came; what it parsed stands, the next statement runs', () => {
    // postgres.js' first run of a statement: a named Parse, Describe, Bind and Execute, then the next statement.
    const parse = message(Frontend.Parse, 'kept_cancel', 'SELECT pg_sleep(2)', int16(0));
    const bind = message(Frontend.Bind, '', 'kept_cancel', int16(0), int16(0), int16(0));
    const execute = message(Frontend.Execute, '', int32(0));
    const next = message(Frontend.Parse, '', 'SELECT 7', int16(0));
    const unnamedBind = message(Frontend.Bind, '', '', int16(0), int16(0), int16(0));
    const batch = Buffer.concat([parse, message(Frontend.Describe, [0x53], 'kept_cancel'), bind, execute, sync(), next, unnamedBind, execute, sync()]);
    expect(interrupt(engine.interruptTarget, 'cancel', session.id)).toBe(false);
    const start = now();
    const output = lease.exec(batch);
    expect(now() - start).toBeLessThan(1_000);
    const answer = [...eachMessage(output)].map(({ type }) => String.fromCharCode(type)).join('');
    // ParseComplete, ParameterDescription, RowDescription, BindComplete, the error, ReadyForQuery; then SELECT 7's.
    expect(answer).toBe('1tT2EZ12DCZ');
    expect(readError(output)).toMatchObject({ code: '57014', message: 'canceling statement due to user request' });
    expect(readError(output)).not.toHaveProperty('detail');
    expect(readRows(output)).toEqual([['7']]);
    expect(run("SELECT count(*) FROM pg_prepared_statements WHERE name = 'kept_cancel'")).toEqual({ rows: [['1']] });
    run('DEALLOCATE kept_cancel');
  });

  it('raises again, from a watcher thread, a cancel that Postgres dropped as it read the statement it came for', async () => {
    const mod = lease.pglite.Module as unknown as Record<string, () => unknown>;
    const loopOnce = mod._PostgresMainLoopOnce!;
    let raised = false;
    // The cancel comes once the statement has begun, before Postgres has read it: it drops the cancel as it reads.
    const cancelBeforeRead = () => {
      mod._PostgresMainLoopOnce = () => {
        mod._PostgresMainLoopOnce = loopOnce;
        raised = interrupt(engine.interruptTarget, 'cancel', session.id);
        return loopOnce();
      };
    };
    try {
      cancelBeforeRead();
      expect(run('SELECT pg_sleep(0.3)')).toEqual({ rows: [['']] }); // dropped, with nobody watching
      expect(raised).toBe(true);
      await interrupter.watch(true);
      cancelBeforeRead();
      const start = now();
      expect(run('SELECT pg_sleep(2)')).toEqual({ error: '57014 canceling statement due to user request' });
      expect(now() - start).toBeLessThan(1_000);
      expect(run('SELECT pg_sleep(0.2)')).toEqual({ rows: [['']] }); // once delivered, it is not raised again
    } finally {
      mod._PostgresMainLoopOnce = loopOnce;
      await interrupter.watch(false);
    }
  });

  it('ends a statement for a terminate, and tells the caller to close the connection with 57P01', async () => {
    expect(await interrupted('SELECT pg_sleep(5)', 'terminate', 20)).toMatchObject({ error: '57014 canceling statement due to user request' });
    expect(lease.termination).toEqual({ code: '57P01', message: 'terminating connection due to administrator command' });
    expect(run('SELECT 1')).toEqual({ rows: [['1']] });
    expect(lease.termination).toBeUndefined();
  });

  it('ends a sleep at statement_timeout by itself, with Postgres\' error', () => {
    run("SET statement_timeout = '300ms'");
    try {
      const start = now();
      expect(run('SELECT pg_sleep(5)')).toEqual({ error: '57014 canceling statement due to statement timeout' });
      expect(now() - start).toBeLessThan(4_000);
    } finally {
      run('RESET statement_timeout');
    }
  });

  it('ends CPU-bound statements at statement_timeout, lock waits at lock_timeout, from a watcher thread', async () => {
    await interrupter.watch(true);
    try {
      run("SET statement_timeout = '300ms'");
      expect(run('SELECT count(*) FROM generate_series(1, 30000000)')).toEqual({ error: '57014 canceling statement due to statement timeout' });
      run('RESET statement_timeout');
      expect(run('SELECT count(*) FROM generate_series(1, 1000)')).toEqual({ rows: [['1000']] });

      run('CREATE TABLE locked (id int PRIMARY KEY, v int); INSERT INTO locked VALUES (1, 1)');
      run("BEGIN; UPDATE locked SET v = 2 WHERE id = 1; PREPARE TRANSACTION 'holds_row'");
      run("SET lock_timeout = '300ms'");
      expect(run('UPDATE locked SET v = 3 WHERE id = 1')).toEqual({ error: '55P03 canceling statement due to lock timeout' });
      run('RESET lock_timeout');
      run("SET statement_timeout = '300ms'");
      expect(run('UPDATE locked SET v = 3 WHERE id = 1')).toEqual({ error: '57014 canceling statement due to statement timeout' });
      run('RESET statement_timeout');
      run("ROLLBACK PREPARED 'holds_row'");
      expect(run('UPDATE locked SET v = 3 WHERE id = 1 RETURNING v')).toEqual({ rows: [['3']] });

      run("SET transaction_timeout = '300ms'");
      run('BEGIN');
      expect(run('SELECT count(*) FROM generate_series(1, 30000000)')).toEqual({ error: '57014 canceling statement due to user request' });
      expect(lease.termination).toEqual({ code: '25P04', message: 'terminating connection due to transaction timeout' });
      run('ROLLBACK');
      run('RESET transaction_timeout');
    } finally {
      await interrupter.watch(false);
    }
  });

  it('reports a timeout that ends the session between statements, instead of letting it end the process', async () => {
    const reported: Array<[number | undefined, string]> = [];
    engine.onIdleTimeout((sessionId, termination) => reported.push([sessionId, `${termination.code} ${termination.message}`]));
    run("SET idle_in_transaction_session_timeout = '100ms'");
    run('BEGIN');
    run('SELECT 1');
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(reported).toEqual([[session.id, '25P03 terminating connection due to idle-in-transaction timeout']]);
    run('ROLLBACK');
    run('RESET idle_in_transaction_session_timeout');
    expect(run('SELECT 2')).toEqual({ rows: [['2']] });
  });

  it('sleeps without using the CPU', () => {
    const before = process.cpuUsage();
    expect(run('SELECT pg_sleep(3)')).toEqual({ rows: [['']] });
    const used = process.cpuUsage(before);
    const seconds = (used.user + used.system) / 1e6;
    console.log(`pg_sleep(3): ${seconds.toFixed(3)} CPU-s`);
    expect(seconds).toBeLessThan(0.5); // 2.8 when the wait spun
  });

  it('links the side modules Postgres loads (plpgsql) to the shared memory', () => {
    // Not the encoding conversions: convert_to(..., 'LATIN1') breaks PGlite 0.5.16 with or without a shared memory.
    expect(run('CREATE FUNCTION twice(n int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN n * 2; END $$')).toEqual({ rows: [] });
    expect(run('SELECT twice(21)')).toEqual({ rows: [['42']] });
    expect(run("DO $$ BEGIN PERFORM twice(1); END $$")).toEqual({ rows: [] });
  });

  it('keeps UTF-8 text intact both ways, through the raw and the parsed path', async () => {
    const text = 'héllo wörld ✓ 日本語のテキスト 🐘🚀 ' + 'ü'.repeat(300);
    const literal = `'${text}'`;
    expect(run(`SELECT ${literal}::text AS t, length(${literal})`)).toEqual({ rows: [[text, String([...text].length)]] });
    const parsed = await lease.pglite.query<{ t: string }>('SELECT $1::text AS t', [text]);
    expect(parsed.rows[0]!.t).toBe(text);
  });

  it('keeps every view of the memory correct when a query grows it by hundreds of MB', async () => {
    const memory = engine.interruptTarget.memory;
    const before = memory.buffer.byteLength;
    expect(run("SELECT count(*) FROM (SELECT repeat('x', 1000) || i AS s FROM generate_series(1, 400000) AS i ORDER BY s DESC) AS q")).toEqual({
      rows: [['400000']],
    });
    expect(memory.buffer.byteLength - before).toBeGreaterThan(200 * 1024 * 1024);
    const big = run("SELECT string_agg(repeat('é', 100), ',') FROM generate_series(1, 100000)");
    expect(big.rows![0]![0]).toBe(Array.from({ length: 100000 }, () => 'é'.repeat(100)).join(','));
    const text = 'après la croissance ✓ 🐘';
    expect(run(`SELECT '${text}'`)).toEqual({ rows: [[text]] });
    expect((await lease.pglite.query<{ t: string }>('SELECT $1::text AS t', [text])).rows[0]!.t).toBe(text);
    expect(await interrupted('SELECT pg_sleep(5)', 'cancel', 20)).toMatchObject({ error: '57014 canceling statement due to user request' });
    expect(run('SELECT 1')).toEqual({ rows: [['1']] });
  });
});

describe('shareMemoryImport', () => {
  it('refuses a module without an imported memory, with a message that says what it means', () => {
    const empty = Uint8Array.of(0, 0x61, 0x73, 0x6d, 1, 0, 0, 0);
    expect(() => shareMemoryImport(empty)).toThrow('pglite.wasm imports no memory with a maximum: this PGlite version cannot be interrupted');
  });
});
