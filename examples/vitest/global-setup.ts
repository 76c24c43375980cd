/**
 * Starts one in-memory pgdev server on free ports before the test files run, hands its URL to them with
 * `provide('databaseUrl', ...)` (read in tests with `inject('databaseUrl')`), and closes it after the run.
 */
import type { TestProject } from 'vitest/node';
import { startServer } from 'pgdev';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
  }
}

export default async function setup(project: TestProject) {
  const server = await startServer({
    // A name of its own, so it never collides with a `default` server you keep running for development.
    name: `vitest-example-${process.pid}`,
    persistence: 'memory',
    port: 0,
    databasePort: 0,
    shadowDatabasePort: 0,
  });
  project.provide('databaseUrl', server.databaseUrl);
  return async () => {
    await server.close();
  };
}
