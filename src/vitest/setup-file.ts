/**
 * @module
 * The setup file `pgdevDatabases()` adds: before each test file, in its worker, clones the template into the worker's
 * own database, `<prefix>_<VITEST_POOL_ID>` (the worker's slot: workers running at the same time never share one),
 * and points `DATABASE_URL` at it.
 */
import { inject } from 'vitest';
import { WORKER_ENV, callEndpoint } from './index.js';

const context = inject('pgdevWorkerContext');
const database = `${context.prefix}_${process.env.VITEST_POOL_ID ?? '1'}`;
const url = new URL(context.serverUrl);
url.pathname = `/${database}`;
await callEndpoint(context.endpoint, 'clone', database);
process.env[WORKER_ENV.database] = database;
process.env[WORKER_ENV.url] = url.toString();
process.env[WORKER_ENV.endpoint] = context.endpoint;
process.env.DATABASE_URL = url.toString();
