/**
 * @module
 * Prepared statements and portals of one connection on the shared engine. Named ones get a per-connection prefix
 * (`_pgdev<pid>_`), so that two connections never share a name; they are kept (their Parse) to be closed when the
 * connection ends or put back on another engine. The unnamed statement outlives a Sync on a real server, but here
 * another connection may have replaced it since: this connection's last unnamed Parse is replayed first when a
 * batch uses it without parsing it again.
 * @see https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY
 */
import type { Engine, EngineSession } from '../engine/engine.js';
import { Backend, Frontend, cstring, decode, int16, message, sync } from '../engine/protocol.js';
import { SqlState } from './backend-error.js';
import { isCopyFromStdin } from './copy-in.js';
import { FramingError } from './framing.js';

/** Run instead of COPY FROM STDIN in the extended protocol: the engine refuses it, failing the transaction it is in. */
const COPY_IN_EXTENDED_REFUSAL =
  `DO $pgdev$BEGIN RAISE EXCEPTION USING ERRCODE = '${SqlState.FeatureNotSupported}', MESSAGE = 'COPY FROM STDIN is supported only in the simple query protocol: send it as a query of its own'; END$pgdev$`;

/** Whether a batch parses the unnamed statement, or uses one parsed in an earlier batch (Bind, Describe). */
export type UnnamedUse = { readonly parses: boolean; readonly usesEarlier: boolean };

/** A rewritten message, and the statement text it runs (for pg_stat_activity), if it names one. */
export type Renamed = { readonly message: Buffer; readonly sql?: string };

export class StatementNames {
  #prefix: Buffer;
  /** Tells the gateway what a statement may change; true if it follows anything in it. */
  #observe: (sql: string) => boolean;
  /** Named prepared statements (prefixed name -> their Parse). */
  #statements = new Map<string, Buffer>();
  /**
   * Each prepared statement by the client's name (the unnamed one under ''): its SQL, shown in pg_stat_activity when
   * Bind runs it again, and whether it has effects the gateway follows, observed again then (postgres.js re-runs
   * prepared statements with Bind alone).
   */
  #prepared = new Map<string, { sql: string; observed: boolean }>();
  /** This connection's last Parse of the unnamed statement, replayed if the engine lost it since. */
  #unnamedParse: Buffer | undefined;
  #batchParsesUnnamed = false;
  #batchUsesEarlierUnnamed = false;

  constructor(processId: number, observe: (sql: string) => boolean) {
    this.#prefix = Buffer.from(`_pgdev${processId}_`);
    this.#observe = observe;
  }

  /** The Parse messages of the named prepared statements, as sent to the engine. */
  namedParses(): Buffer[] {
    return [...this.#statements.values()];
  }

  /** Closes every named statement (then a Sync), or undefined if there is none. */
  closeAll(): Buffer | undefined {
    if (this.#statements.size === 0) return undefined;
    const closes = [...this.#statements.keys()].map((name) => message(Frontend.Close, [0x53], cstring(name)));
    return Buffer.concat([...closes, sync()]);
  }

  /** Gives named statements and portals the prefix; unnamed ones (what most drivers use) pass without a copy. */
  rename(msg: Buffer): Renamed {
    const type = msg[0]!;
    const body = msg.subarray(5);
    const at = (offset: number) => {
      const end = body.indexOf(0, offset);
      if (end < 0) throw new FramingError('unterminated string');
      return end;
    };
    let renamed = false;
    const rename = (name: Buffer) => {
      if (name.length === 0) return name;
      renamed = true;
      return Buffer.concat([this.#prefix, name]);
    };
    let parts: Buffer[];
    let sql: string | undefined;
    if (type === Frontend.Parse) {
      const nameEnd = at(0);
      const name = body.subarray(0, nameEnd);
      sql = decode(body.subarray(nameEnd + 1, at(nameEnd + 1)));
      // Refused by the engine when executed, so that a transaction or pipeline it is part of fails there too.
      if (isCopyFromStdin(sql)) return { message: message(type, rename(name).toString(), COPY_IN_EXTENDED_REFUSAL, int16(0)), sql };
      this.#prepared.set(name.toString(), { sql, observed: this.#observe(sql) });
      if (name.length) {
        const parse = message(type, rename(name), body.subarray(nameEnd));
        this.#statements.set(rename(name).toString(), parse);
        return { message: parse, sql };
      }
      this.#unnamedParse = msg;
      this.#batchParsesUnnamed = true;
      parts = [name, body.subarray(nameEnd)];
    } else if (type === Frontend.Bind) {
      const portalEnd = at(0);
      const statementEnd = at(portalEnd + 1);
      if (statementEnd === portalEnd + 1 && !this.#batchParsesUnnamed) this.#batchUsesEarlierUnnamed = true;
      const prepared = this.#prepared.get(body.toString('utf8', portalEnd + 1, statementEnd));
      if (prepared) {
        sql = prepared.sql;
        if (prepared.observed) this.#observe(prepared.sql);
      }
      parts = [rename(body.subarray(0, portalEnd)), Buffer.from([0]), rename(body.subarray(portalEnd + 1, statementEnd)), body.subarray(statementEnd)];
    } else if (type === Frontend.Execute) {
      const portalEnd = at(0);
      parts = [rename(body.subarray(0, portalEnd)), body.subarray(portalEnd)];
    } else {
      // Describe and Close: a kind byte ('S' or 'P') then the name.
      const nameEnd = at(1);
      if (type === Frontend.Describe && body[0] === 0x53 && nameEnd === 1 && !this.#batchParsesUnnamed) this.#batchUsesEarlierUnnamed = true;
      parts = [body.subarray(0, 1), rename(body.subarray(1, nameEnd)), body.subarray(nameEnd)];
      if (type === Frontend.Close && body[0] === 0x53) this.#statements.delete(parts[1]!.toString());
    }
    return { message: renamed ? message(type, ...parts) : msg, sql };
  }

  /** Whether named statements are left in the engine (to close when the connection ends). */
  get hasNamed(): boolean {
    return this.#statements.size > 0;
  }

  /** How the batch collected so far uses the unnamed statement; the next batch starts afresh. */
  takeBatchUse(): UnnamedUse {
    const use = { parses: this.#batchParsesUnnamed, usesEarlier: this.#batchUsesEarlierUnnamed };
    this.#batchParsesUnnamed = this.#batchUsesEarlierUnnamed = false;
    return use;
  }

  /**
   * A batch as it runs: its messages, with this connection's unnamed Parse first again if the batch uses it and
   * another connection replaced it since. Call {@link ran} with the engine's answer.
   */
  withUnnamed(messages: Buffer[], use: UnnamedUse, engine: Engine, session: EngineSession): { batch: Buffer; replayed: boolean } {
    const replayed = use.usesEarlier && this.#unnamedParse !== undefined && engine.unnamedStatementOwner !== session;
    const all = replayed ? [this.#unnamedParse!, ...messages] : messages;
    return { batch: all.length === 1 ? all[0]! : Buffer.concat(all), replayed };
  }

  /** Notes who owns the engine's unnamed statement after a batch; returns its answer without a replay's ParseComplete. */
  ran(use: UnnamedUse & { replayed: boolean; hasQuery: boolean }, output: Uint8Array, engine: Engine, session: EngineSession): Uint8Array {
    if (use.parses || use.replayed) engine.unnamedStatementOwner = session;
    else if (use.hasQuery) engine.unnamedStatementOwner = undefined;
    return use.replayed && output[0] === Backend.ParseComplete ? output.subarray(5) : output;
  }
}
