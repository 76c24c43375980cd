/**
 * Module hooks for postgres.js's tests, which are otherwise loaded unchanged:
 * - tests/index.js imports its runner `./test.js`: it gets harness.js instead;
 * - tests/bootstrap.js runs without its `alter system set ssl=on`. That setting serves only the SSL tests, which
 *   are set aside; PGlite is built without SSL, so on pgdev the statement fails ("SSL is not supported by this
 *   build") and the bootstrap would throw before the first test. It is left out of both runs alike.
 */
const HARNESS = new URL('./harness.js', import.meta.url).href;
const SSL_ON = "exec('psql', ['-c', 'alter system set ssl=on'])";

export async function resolve(specifier, context, nextResolve) {
  if (specifier === './test.js' && context.parentURL?.endsWith('/tests/index.js')) return { url: HARNESS, shortCircuit: true };
  return nextResolve(specifier, context);
}

export async function load(url, context, nextLoad) {
  const loaded = await nextLoad(url, context);
  if (!url.endsWith('/tests/bootstrap.js')) return loaded;
  const source = String(loaded.source);
  if (!source.includes(SSL_ON)) throw new Error(`pgdev suites: ${url} no longer contains ${SSL_ON}; update bench/suites/postgresjs/hooks.js`);
  return { ...loaded, source: source.replace(SSL_ON, '/* left out by pgdev\'s runner: for the SSL tests only */') };
}
