/**
 * @module
 * Data in and out over HTTP, for the api_key holder (and for `pgdev dump`/`load` on a running server):
 *
 * - `GET /dump?database=postgres&schemaOnly=1|dataOnly=1&targetVersion=15` answers the SQL that pg_dump writes, streamed as
 *   `application/sql`; `Server-Timing: held;dur=N` says how long the database was held (other clients waited).
 * - `POST /load?database=postgres&source=NAME` runs the SQL script in the body in one transaction and answers
 *   `{"statements", "copiedRows", "notes", "heldMs"}`. If the client goes away before it ends, it is rolled back.
 *
 * Errors answer `{"error": {"code", "message"}}` with pgdev's error code (E_UNKNOWN_DATABASE, E_LOAD_FAILED, ...).
 */
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { dumpDatabase } from '../engine/dump.js';
import { decodeScript, loadScript } from '../engine/load.js';
import { isPgdevError, type ErrorCode } from '../errors.js';
import type { EngineHttpContext } from './app.js';
import { MAX_LOAD_BYTES, tooLargeBody } from './body-limit.js';
import { unauthorised } from './sql.js';


const STATUS: Partial<Record<ErrorCode, 400 | 404 | 413 | 507>> = {
  E_UNKNOWN_DATABASE: 404,
  E_DISK_FULL: 507,
};

function errorResponse(c: Context, error: unknown): Response {
  if (!isPgdevError(error)) throw error;
  return c.json({ error: { code: error.code, message: error.message } }, STATUS[error.code] ?? 400);
}

function flag(value: string | undefined): boolean {
  return value !== undefined && value !== '0' && value !== 'false';
}

export function createDataRoutes(context: EngineHttpContext): Hono {
  const app = new Hono();
  app.use('/dump', async (c, next) => unauthorised(c, context.secret) ?? next());
  app.use('/load', async (c, next) => unauthorised(c, context.secret) ?? next());

  app.get('/dump', async (c) => {
    try {
      const engine = await context.database(c.req.query('database'));
      const target = c.req.query('targetVersion');
      const { sql, heldMs } = await dumpDatabase(engine, {
        schemaOnly: flag(c.req.query('schemaOnly')),
        dataOnly: flag(c.req.query('dataOnly')),
        targetVersion: target === undefined ? undefined : Number.parseInt(target, 10),
      });
      const bytes = Buffer.from(sql);
      const chunk = 64 * 1024;
      let offset = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (offset >= bytes.length) return controller.close();
          controller.enqueue(bytes.subarray(offset, (offset += chunk)));
        },
      });
      return c.body(body, 200, { 'content-type': 'application/sql; charset=utf-8', 'server-timing': `held;dur=${heldMs}` });
    } catch (error) {
      return errorResponse(c, error);
    }
  });

  const loadLimit = bodyLimit({
    maxSize: MAX_LOAD_BYTES,
    onError: (c) => c.json(tooLargeBody('/load'), 413),
  });
  app.post('/load', loadLimit, async (c) => {
    try {
      const database = c.req.query('database');
      const engine = await context.database(database);
      const source = c.req.query('source') ?? 'the script';
      const text = decodeScript(new Uint8Array(await c.req.arrayBuffer()), source);
      const result = await loadScript(engine, text, { source, database: database ?? 'postgres', signal: c.req.raw.signal });
      return c.json(result);
    } catch (error) {
      return errorResponse(c, error);
    }
  });
  return app;
}
