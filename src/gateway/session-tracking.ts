/**
 * @module
 * What a connection's statements leave in the shared engine session, followed so that it stays the connection's own:
 * its settings (read back after a statement that may change them, and reported with ParameterStatus), its temporary
 * relations (hidden from others while they run, dropped when it ends) and its LISTENs (the engine session listens
 * for every connection; an UNLISTEN puts back the channels others still want).
 */
import { quoteIdent, type EngineSession, type Lease } from '../engine/engine.js';
import { dropRelations, mayChangeSettings, mayCreateTempRelations, tempRelations } from '../engine/session-state.js';
import { TransactionStatus, parameterStatus, query } from '../engine/protocol.js';

const LISTEN_COMMAND = /(?:^|;)\s*(un)?listen\s+("(?:[^"]|"")+"|[a-z_][\w$]*|\*)/gi;

/** What the tracking needs from the rest of the gateway. */
export type TrackingHost = {
  readonly engineSession: EngineSession;
  /** Tells the engine which temporary relations are this session's. */
  trackTempRelations(session: EngineSession): void;
  /** Every channel other connections listen on. */
  channelsOfOthers(): Set<string>;
  /** Whether another connection still listens on the channel. */
  listenedByOthers(channel: string): boolean;
};

export class SessionTracking {
  /** Channels this connection LISTENs on. */
  readonly listening = new Set<string>();
  #host: TrackingHost;
  #settingsDirty = false;
  /** Settings changed inside the open transaction: read back once more when it ends (SET LOCAL, a rollback). */
  #settingsAtEnd = false;
  #tempDirty = false;
  #listenDirty = false;

  constructor(host: TrackingHost) {
    this.#host = host;
  }

  /** Notes what a statement may change, so that it is read back once the statement completes; true if anything. */
  observe(sql: string): boolean {
    let noticed = false;
    if (mayChangeSettings(sql)) noticed = this.#settingsDirty = true;
    if (mayCreateTempRelations(sql)) noticed = this.#tempDirty = true;
    for (const [, un, rawName] of sql.matchAll(LISTEN_COMMAND)) {
      noticed = true;
      const channel = rawName!.startsWith('"') ? rawName!.slice(1, -1).replaceAll('""', '"') : rawName!.toLowerCase();
      if (!un) this.listening.add(channel);
      else if (channel === '*') this.listening.clear();
      else this.listening.delete(channel);
      if (un) this.#listenDirty = true;
    }
    return noticed;
  }

  /** Reads back what the statement may have changed; returns ParameterStatus messages to send before ReadyForQuery. */
  afterStatement(lease: Lease, status: TransactionStatus): Buffer[] {
    const extra: Buffer[] = [];
    if (this.#settingsDirty || (this.#settingsAtEnd && status === TransactionStatus.Idle)) {
      for (const [name, value] of lease.captureSettings()) extra.push(parameterStatus(name, value));
      this.#settingsDirty = false;
      this.#settingsAtEnd = status !== TransactionStatus.Idle;
    }
    if (status !== TransactionStatus.Idle) return extra;
    if (this.#tempDirty) {
      this.#tempDirty = false;
      // Other sessions' temporary relations are hidden while this one runs: what is visible is its own.
      const session = this.#host.engineSession;
      for (const [relation, kind] of tempRelations(lease)) session.tempRelations.set(relation, kind);
      this.#host.trackTempRelations(session);
    }
    if (this.#listenDirty) {
      // UNLISTEN stops the shared engine session listening; channels other connections still want come back.
      this.#listenDirty = false;
      const wanted = [...this.#host.channelsOfOthers()];
      if (wanted.length) lease.run(wanted.map((channel) => `LISTEN ${quoteIdent(channel)}`).join('; '));
    }
    return extra;
  }

  /** Whether the connection left anything in the engine that must be dropped when it ends. */
  get leavesState(): boolean {
    return this.#host.engineSession.tempRelations.size > 0 || this.listening.size > 0;
  }

  /** Drops the connection's temporary relations and the LISTENs no other connection shares. */
  cleanUp(lease: Lease): void {
    const session = this.#host.engineSession;
    dropRelations(lease, session.tempRelations);
    session.tempRelations.clear();
    this.#host.trackTempRelations(session);
    const unlistens = [...this.listening]
      .filter((channel) => !this.#host.listenedByOthers(channel))
      .map((channel) => `UNLISTEN ${quoteIdent(channel)}`);
    if (unlistens.length) lease.exec(query(unlistens.join('; ')));
    this.listening.clear();
  }
}
