/**
 * @module
 * Swapping the engine behind a gateway (a `reset()`, or a `restore()` after a schema change) without dropping the
 * connections that have nothing to lose. While a swap runs, sessions wait for the engine as they would for another
 * client's transaction. A connection that holds something only the old database had (an open or failed
 * transaction, a batch or COPY in progress, temporary tables) is told, FATAL 57P01, and closed. Every other one
 * keeps its socket and session: its settings are applied by the new engine when it first takes its turn (they live
 * in its {@link EngineSession}), and its named prepared statements and LISTENs are put back on the new engine before
 * anyone uses it. A statement whose Parse fails there (its table is gone) is gone for that connection too, as after
 * a DROP on a real server.
 */
import { quoteIdent, type Engine, type EngineSession, type Lease } from '../engine/engine.js';
import { sync } from '../engine/protocol.js';
import { SqlState } from './backend-error.js';
import { SessionPhase, type Session } from './session.js';

export type EngineSwap = {
  tryAcquire(engine: Engine, session: EngineSession): Lease | undefined;
  acquire(current: () => Engine, session: EngineSession, signal?: AbortSignal): Promise<Lease>;
  /**
   * Starts a swap: tells and closes the sessions that cannot be kept, and holds every other one back from the
   * engine. Resolves with `resume`, to call with the new engine (or the old one, if opening the new one failed).
   */
  suspend(reason: string): Promise<(next: Engine) => Promise<void>>;
};

export type EngineSwapOptions = {
  sessions(): Iterable<Session>;
  /** Makes `next` the gateway's engine. */
  use(next: Engine): void;
  log(line: string): void;
};

/** Whether a session holds something the old engine only has, so that it must be told and closed. */
function loses(session: Session): boolean {
  const idle = session.phase === SessionPhase.Idle || session.phase === SessionPhase.Startup;
  return !idle || session.engineSession.tempRelations.size > 0;
}

export function createEngineSwap(options: EngineSwapOptions): EngineSwap {
  let swapping: Promise<void> | undefined;

  const tell = (reason: string) =>
    Promise.all(
      [...options.sessions()].filter(loses).map((session) => {
        session.fatal({ code: SqlState.AdminShutdown, message: `terminating connection because the database was ${reason}` });
        return session.close(reason);
      }),
    );

  /** Puts a kept session's named statements and LISTENs back, on the new engine (which applies its settings). */
  const replay = async (engine: Engine, session: Session) => {
    const parses = session.namedParses();
    if (parses.length === 0 && session.listening.size === 0 && session.engineSession.settings.size === 0) return;
    const lease = await engine.acquire(session.engineSession);
    try {
      // One Sync after each Parse: a Parse that fails must not take the following ones down with it.
      if (parses.length) lease.exec(Buffer.concat(parses.flatMap((parse) => [parse, sync()])));
      if (session.listening.size) lease.run([...session.listening].map((channel) => `LISTEN ${quoteIdent(channel)}`).join('; '));
    } finally {
      lease.release();
    }
  };

  return {
    tryAcquire: (engine, session) => (swapping ? undefined : engine.tryAcquire(session)),
    async acquire(current, session, signal) {
      while (swapping) await swapping;
      return current().acquire(session, signal);
    },
    async suspend(reason) {
      let open!: () => void;
      swapping = new Promise<void>((resolve) => (open = resolve));
      await tell(reason);
      return async (next) => {
        try {
          // A client already queued when the swap began has had its turn on the old engine since: check again.
          await tell(reason);
          options.use(next);
          for (const session of options.sessions()) {
            await replay(next, session).catch((error: unknown) => options.log(`gateway: could not restore a session after the ${reason}: ${String(error)}`));
          }
        } finally {
          swapping = undefined;
          open();
        }
      };
    },
  };
}
