/**
 * @module
 * The aborted-transaction hand-back. Once a connection's transaction has failed (ReadyForQuery 'E'), nothing in it
 * can be committed anymore, so it need not hold the engine until the client says ROLLBACK: unless it has savepoints
 * that ROLLBACK TO SAVEPOINT could return to, it is rolled back in the engine at once and the engine released. The
 * connection is then answered as Postgres would answer it, until the block ends:
 *
 * - a simple query that does not end the block: 25P02, without waiting for the engine;
 * - a simple `ROLLBACK` / `ABORT` / `COMMIT` / `END`: the command tag `ROLLBACK` and ReadyForQuery idle, likewise;
 * - anything else (the extended protocol, `ROLLBACK AND CHAIN`, several statements, `PREPARE TRANSACTION`, ...): the
 *   engine is put back into a failed transaction of this connection's own, and runs it, answering exactly as it
 *   would have; if the block is still failed after that, it is handed back again.
 * @see https://www.postgresql.org/docs/current/tutorial-transactions.html
 */
import type { Lease } from '../engine/engine.js';
import { Backend, TransactionStatus, message, readyForQuery } from '../engine/protocol.js';
import { backendError, SqlState } from './backend-error.js';

const SAVEPOINT = /\bsavepoint\b/i;
/** Comments and blanks before a statement's first keyword. */
const LEADING = /^(?:\s+|--[^\n]*(?:\n|$)|\/\*[^]*?\*\/)*/;
/** Statements that may end (or act on) a failed block: these are never answered with 25P02 here. */
const BLOCK_CONTROL = /^(?:rollback|abort|commit|end|prepare|release)\b/i;
/** A block end answered here: one plain statement, no AND CHAIN, no TO SAVEPOINT. */
const PLAIN_END = /^(?:rollback|abort|commit|end)(?:\s+(?:work|transaction))?\s*;?\s*$/i;

const NONE: readonly Buffer[] = [];

const IN_FAILED_TRANSACTION = 'current transaction is aborted, commands ignored until end of transaction block';

export class AbortedTransaction {
  /** Whether the open transaction may have savepoints: then it keeps the engine, as before. */
  #savepoints = false;
  #handedBack = false;
  /** ParameterStatus messages for settings a hand-back's rollback changed, sent when the client ends the block. */
  #pending: Buffer[] = [];

  /** Whether this connection's failed block has been rolled back in the engine and is answered here. */
  get handedBack(): boolean {
    return this.#handedBack;
  }

  /** Notes a statement the connection runs; true if it may create a savepoint. */
  observe(sql: string): boolean {
    if (!SAVEPOINT.test(sql)) return false;
    this.#savepoints = true;
    return true;
  }

  /** Whether a block that has just failed can be handed back. */
  mayHandBack(status: TransactionStatus): boolean {
    return status === TransactionStatus.Failed && !this.#savepoints && !this.#handedBack;
  }

  /**
   * Rolls the failed block back in the engine. `afterRollback` reads back what the rollback undid (settings,
   * temporary relations) and returns the ParameterStatus messages to send when the client ends the block.
   */
  handBack(lease: Lease, afterRollback: () => Buffer[]): void {
    lease.run('ROLLBACK');
    this.#handedBack = true;
    this.#pending.push(...afterRollback());
  }

  /**
   * The answer to a simple query while handed back, given without the engine (`ended` when it ends the block), or
   * undefined when the engine must run it (see {@link reenter}).
   */
  answer(sql: string): { output: Buffer; ended: boolean } | undefined {
    const statement = sql.replace(LEADING, '');
    if (PLAIN_END.test(statement)) {
      this.#handedBack = false;
      const output = Buffer.concat([message(Backend.CommandComplete, 'ROLLBACK'), ...this.#takePending(), readyForQuery(TransactionStatus.Idle)]);
      return { output, ended: true };
    }
    if (statement === '' || BLOCK_CONTROL.test(statement)) return undefined;
    const error = backendError({ severity: 'ERROR', code: SqlState.InFailedTransaction, message: IN_FAILED_TRANSACTION });
    return { output: Buffer.concat([error, readyForQuery(TransactionStatus.Failed)]), ended: false };
  }

  /** Puts the engine back into a failed block, so that it answers the client's next batch as it would have. */
  reenter(lease: Lease): void {
    this.#handedBack = false;
    try {
      lease.run('BEGIN; SELECT 1/0');
    } catch {
      // Expected: the division fails, and that leaves the block failed.
    }
  }

  /**
   * Follows each ReadyForQuery status: savepoints are forgotten once the transaction is over. Returns the
   * ParameterStatus messages held since a hand-back once the block has ended.
   */
  settle(status: TransactionStatus): readonly Buffer[] {
    if (status === TransactionStatus.Idle) this.#savepoints = false;
    return status === TransactionStatus.Failed ? NONE : this.#takePending();
  }

  #takePending(): readonly Buffer[] {
    return this.#pending.length ? this.#pending.splice(0) : NONE;
  }
}
