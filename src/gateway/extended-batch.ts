/**
 * @module
 * The extended-protocol batch of one connection: its messages are collected until Sync (or Flush) and run as one
 * batch, so that no other connection runs between a Parse and its Sync. After a Flush the batch has run but its
 * pipeline is still open: the engine is inside this connection's (implicit or explicit) transaction although no
 * ReadyForQuery said so, until the Sync that ends the pipeline.
 * @see https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-PIPELINING
 */
import { Frontend } from '../engine/protocol.js';

export class ExtendedBatch {
  #messages: Buffer[] = [];
  /** A simple query ends the batch (its text). */
  #query: string | undefined;
  /** The statement text of the batch, for pg_stat_activity. */
  text = '';
  /** Set when a batch failed in the gateway: later messages are skipped until Sync, as Postgres does. */
  #skipping: Buffer | undefined;
  #open = false;
  #ran = false;
  #inBlock = false;

  /** Messages of the batch wait to be run. */
  get collecting(): boolean {
    return this.#messages.length > 0;
  }

  /** Messages are skipped until Sync (see {@link skipUntilSync}). */
  get skipping(): boolean {
    return this.#skipping !== undefined;
  }

  /** Extended-protocol messages ran in the engine since the last Sync (a Flush came first). */
  get open(): boolean {
    return this.#open;
  }

  /** The open pipeline executed a statement: a later statement of it is not the first of its transaction. */
  get ran(): boolean {
    return this.#ran;
  }

  /** The open pipeline ran BEGIN: it is inside a transaction block. */
  get inBlock(): boolean {
    return this.#inBlock;
  }

  /** Whether a statement now would follow others of the same pipeline (executed, or waiting to be). */
  get followsStatements(): boolean {
    return this.#ran || this.#messages.some((msg) => msg[0] === Frontend.Execute);
  }

  push(msg: Buffer, sql?: string): void {
    this.#messages.push(msg);
    if (sql !== undefined) this.text = sql;
  }

  /** A simple query: it ends the batch. */
  pushQuery(msg: Buffer, sql: string): void {
    this.#messages.push(msg);
    this.#query = this.text = sql;
  }

  /** The messages to run now, and the simple query that ends them, if one does; the batch starts again empty. */
  take(): { messages: Buffer[]; query: string | undefined } {
    const taken = { messages: this.#messages, query: this.#query };
    this.#messages = [];
    this.#query = undefined;
    return taken;
  }

  /** Drops the batch, answering `error` at the next Sync (an empty one when it was already sent). */
  skipUntilSync(error: Buffer): void {
    this.#skipping = error;
    this.take();
  }

  /** At Sync: the error to answer with if the batch was skipped, which ends the skipping. */
  takeSkipped(): Buffer | undefined {
    const error = this.#skipping;
    this.#skipping = undefined;
    return error;
  }

  /** A flushed batch ran (no ReadyForQuery came): the pipeline stays open until Sync. */
  flushed(messages: Buffer[]): void {
    this.#open = true;
    if (messages.some((msg) => msg[0] === Frontend.Execute)) this.#ran = true;
  }

  /** Follows BEGIN and its ends by their command tags while the pipeline is open. */
  commandTag(tag: string): void {
    if (tag === 'BEGIN' || tag === 'START TRANSACTION') this.#inBlock = true;
    else if (tag === 'COMMIT' || tag === 'ROLLBACK') this.#inBlock = false;
  }

  /** A ReadyForQuery came: the pipeline is over. */
  synced(): void {
    this.#open = this.#ran = this.#inBlock = false;
  }
}
