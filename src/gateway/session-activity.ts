/**
 * @module
 * A connection's line in `pg_stat_activity` and `pgdev sessions` (its {@link BackendActivity}), kept up to date as
 * its statements start, wait and end, and the server log's answer to "who holds the database?" when a connection
 * waits long for it.
 * @see https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-ACTIVITY-VIEW
 */
import type net from 'node:net';
import { TransactionStatus } from '../engine/protocol.js';
import { statementSummary, type BackendActivity, type Backends } from './backends.js';

/** A connection that waits this long for the database is reported in the server's log, with who holds it. */
export const LONG_WAIT_MS = 5_000;

export function createActivity(processId: number, socket: net.Socket): BackendActivity {
  const now = new Date();
  return {
    processId, user: '', applicationName: '', clientAddress: socket.remoteAddress ?? null,
    clientPort: socket.remotePort ?? null, backendStart: now, xactStart: null, queryStart: null, stateChange: now,
    state: 'idle', wait: null, query: '',
  };
}

/** A statement starts; `startsTransaction` when the connection was idle before it. */
export function markActive(activity: BackendActivity, query: string, startsTransaction: boolean): void {
  activity.state = 'active';
  activity.query = query;
  activity.queryStart = activity.stateChange = new Date();
  if (startsTransaction) activity.xactStart = activity.queryStart;
}

/** A ReadyForQuery was sent with `status` (a failed transaction handed back stays 'idle in transaction (aborted)'). */
export function markReady(activity: BackendActivity, status: TransactionStatus): void {
  activity.stateChange = new Date();
  if (status === TransactionStatus.Idle) {
    activity.state = 'idle';
    activity.xactStart = null;
  } else {
    activity.state = status === TransactionStatus.Failed ? 'idle in transaction (aborted)' : 'idle in transaction';
  }
}

/** The log line for a connection that has waited {@link LONG_WAIT_MS} for the database. */
export function longWaitReport(backends: Backends, processId: number, holderId: number | undefined, label: string): string {
  const holder = holderId === undefined ? undefined : backends.activity(holderId);
  const by = holder
    ? `connection ${holder.processId}${holder.applicationName ? ` (${holder.applicationName})` : ''}, ${holder.state}, whose last statement was: ${statementSummary(holder.query, 120)}`
    : 'pgdev itself (a dump, load, restore or HTTP request)';
  return `pgdev: connection ${processId} has waited ${LONG_WAIT_MS / 1000} s for the ${label} database, held by ${by}`;
}
