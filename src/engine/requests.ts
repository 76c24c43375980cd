/**
 * @module
 * What the HTTP endpoint asks of one database: a `/sql` request, a dump, a load. A database's host answers them on
 * its engine (this module's {@link engineRequests}); the server asks the host over their channel
 * (`daemon/server/database-hosts.ts`), behind the same interface.
 */
import { dumpDatabase, type DumpOptions, type DumpResult } from './dump.js';
import type { Engine } from './engine.js';
import { loadScript, type LoadOptions, type LoadResult } from './load.js';
import { runSqlRequest, type SqlOutcome, type SqlRequest } from './sql-request.js';

export type DatabaseRequests = {
  /** `signal`: the client went away; the request stops waiting for the engine. */
  sql(request: SqlRequest, signal?: AbortSignal): Promise<SqlOutcome>;
  dump(options: DumpOptions): Promise<DumpResult>;
  /** `options.signal`: the client went away; the load is rolled back. */
  load(script: string, options: LoadOptions): Promise<LoadResult>;
};

/** The requests answered on an engine in this thread; `engine()` is called for each (a reset replaces it). */
export function engineRequests(engine: () => Engine): DatabaseRequests {
  return {
    sql: (request, signal) => runSqlRequest(engine(), request, signal),
    dump: (options) => dumpDatabase(engine(), options),
    load: (script, options) => loadScript(engine(), script, options),
  };
}
