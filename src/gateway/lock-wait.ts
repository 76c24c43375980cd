/**
 * @module
 * Waiting for an advisory lock without holding the engine. When a lock call must wait for a lock another connection
 * holds (see backends.ts), the attempt is undone (its transaction rolled back, the statements it prepared closed),
 * the engine given back while the connection waits, and the batch run again afterwards, after replaying the
 * transaction it was part of, if that transaction is made only of statements that can run again (BEGIN, SET).
 */
import type { Lease } from '../engine/engine.js';
import { TransactionStatus, lastReadyStatus } from '../engine/protocol.js';
import { undoForRetry, type Backends, type LockWait } from './backends.js';

/** A statement that ends a transaction: a query string with one cannot be run again after a lock wait. */
const ENDS_TRANSACTION = /(?:^|;)\s*(?:commit|rollback|abort|end|prepare\s+transaction)\b/i;
/** Statements that can run again with the same effect: a transaction made only of them can be replayed. */
const REPLAYABLE = /^\s*(?:begin|start\s+transaction|set)\b[^;]*;?\s*$/i;

/** A batch about to run, as far as a retry is concerned. */
export type RetryableBatch = {
  /** It ends with Sync or is a simple query. */
  readonly complete: boolean;
  /** Statements of the same pipeline ran before it (flushed): they can be neither undone nor replayed. */
  readonly pipelined: boolean;
  /** The connection was idle (no transaction) before it. */
  readonly startedIdle: boolean;
  /** A simple query, with its text. */
  readonly query: string | undefined;
};

export class LockReplay {
  /**
   * The batches of the open transaction, while they can all be run again (BEGIN, SET): a lock wait inside such a
   * transaction rolls it back, waits without holding the engine, and replays them. `null` once it cannot.
   */
  #replayable: Buffer[] | null = [];

  /** Whether a lock call in the batch may wait (and the batch be undone and run again). */
  canRetry(batch: RetryableBatch): boolean {
    if (!batch.complete || batch.pipelined) return false;
    if (!batch.startedIdle && this.#replayable === null) return false;
    return !(batch.query !== undefined && ENDS_TRANSACTION.test(batch.query));
  }

  /** After a complete batch ran: keeps it while the transaction can be replayed. `nowIdle`: its transaction ended. */
  ran(batch: RetryableBatch, sent: Buffer, nowIdle: boolean): void {
    const before = batch.startedIdle ? [] : this.#replayable;
    if (nowIdle) this.#replayable = [];
    else this.#replayable = before && !batch.pipelined && batch.query !== undefined && REPLAYABLE.test(batch.query) ? [...before, sent] : null;
  }

  /** The transaction can no longer be replayed (a COPY ran in it). */
  forget(): void {
    this.#replayable = null;
  }

  /** Runs the open transaction's batches again, on the engine taken back after a wait. */
  replay(lease: Lease): void {
    if (this.#replayable?.length) lease.exec(Buffer.concat(this.#replayable));
  }
}

/**
 * Runs a batch once: its output, or (when a lock call in it must wait) the lock it waits for, with the attempt
 * undone in the engine.
 */
export function attempt(backends: Backends, processId: number, lease: Lease, batch: Buffer, canWait: boolean): { output: Uint8Array } | { wanted: LockWait } {
  backends.beginAttempt(processId, canWait);
  const output = lease.exec(batch);
  const wanted = backends.takeWait(processId);
  if (!wanted) return { output };
  lease.exec(undoForRetry(batch, lastReadyStatus(output) !== TransactionStatus.Idle));
  lease.captureSettings(); // as the undo left them: a SET in the undone attempt is gone, and is made again
  return { wanted };
}
