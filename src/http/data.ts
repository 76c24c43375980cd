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
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { decodeScript } from '../engine/load.js';
import type { HttpContext } from './context.js';
import { apiKeyAuth } from './api-key.js';
import { HttpError, fromPgdevError } from './errors.js';
import { MAX_LOAD_BYTES } from './body-limit.js';


function flag(value: string | undefined): boolean {
  return value !== undefined && value !== '0' && value !== 'false';
}

export function createDataRoutes(context: HttpContext): Hono {
  const app = new Hono();
  app.use('/dump', apiKeyAuth(context.secret));
  app.use('/load', apiKeyAuth(context.secret));

  app.get('/dump', async (c) => {
    try {
      const database = await context.database(c.req.query('database'));
      const target = c.req.query('targetVersion');
      const { sql, heldMs } = await database.dump({
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
      throw fromPgdevError(error);
    }
  });

  const loadLimit = bodyLimit({
    maxSize: MAX_LOAD_BYTES,
    onError: () => {
      throw new HttpError(413, `the script is larger than ${MAX_LOAD_BYTES} bytes; split it`, { fields: { code: 'E_LOAD_FAILED' } });
    },
  });
  app.post('/load', loadLimit, async (c) => {
    try {
      const database = c.req.query('database');
      const requests = await context.database(database);
      const source = c.req.query('source') ?? 'the script';
      const text = decodeScript(new Uint8Array(await c.req.arrayBuffer()), source);
      const result = await requests.load(text, { source, database: database ?? 'postgres', signal: c.req.raw.signal });
      return c.json(result);
    } catch (error) {
      throw fromPgdevError(error);
    }
  });
  return app;
}
