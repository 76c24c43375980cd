/**
 * The two programs pgdev starts, each bundled from `src/` into one file (loading one module instead of about a
 * hundred takes ~50 ms off each start): the CLI (`bin/pgdev.js` runs it) and a database's host (a worker thread or
 * child process of the server). The build runs this, and so does the test run's global setup, so that tests always
 * exercise the `src/` they sit beside, never the last build.
 */
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

export const BUNDLES = [
  { entry: 'src/cli/main.ts', outfile: 'dist/cli/main.bundle.js' },
  { entry: 'src/daemon/host/main.ts', outfile: 'dist/daemon/host/main.bundle.js' },
  // Not bundled into the host: it is a thread of its own, loaded by path.
  { entry: 'src/daemon/host/watcher.ts', outfile: 'dist/daemon/host/watcher.js' },
];

/** Packages loaded from node_modules at run time: large, with files of their own (WebAssembly, engines). */
const EXTERNAL = ['@electric-sql/pglite', '@electric-sql/pglite-tools', 'selfsigned', '@prisma/*', '@opentelemetry/*', 'pacote'];

export async function bundle() {
  await Promise.all(
    BUNDLES.map(({ entry, outfile }) =>
      build({
        absWorkingDir: root,
        entryPoints: [entry],
        outfile,
        bundle: true,
        platform: 'node',
        target: 'node20',
        format: 'esm',
        external: EXTERNAL,
        // Bundled CommonJS dependencies call require(), which an ES module does not have.
        banner: { js: "import { createRequire as createRequireForBundle } from 'node:module'; const require = createRequireForBundle(import.meta.url);" },
        logLevel: 'warning',
      }),
    ),
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await bundle();
