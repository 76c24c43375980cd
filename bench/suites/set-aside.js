/**
 * Tests that cannot run in both columns as this runner sets them up: they need TLS (the reference server runs
 * without it), password logins, a Unix socket, a second server, or a server on port 5432 (the runner uses free
 * ports). They are skipped in both columns, so that the two columns count the same tests. The runner fails loudly
 * when a name here no longer matches a test of the pinned commit.
 */

/** node-postgres: whole files (paths under packages/pg/), each with the reason. */
export const NODE_POSTGRES_SET_ASIDE = {
  'test/integration/client/ssl-tests.js': 'needs TLS, which the reference server runs without',
  'test/integration/gh-issues/2085-tests.js': 'needs TLS, which the reference server runs without (upstream CI skips it with PGTESTNOSSL)',
};

/** postgres.js: test names in tests/index.js, each with the reason. */
export const POSTGRESJS_SET_ASIDE = {
  'Connect using SSL': 'needs TLS, which the reference server runs without',
  'Connect using SSL require': 'needs TLS, which the reference server runs without',
  'Connect using SSL direct': 'needs TLS, which the reference server runs without',
  'Connect using SSL prefer': 'needs TLS, which the reference server runs without',
  'Reconnect using SSL': 'needs TLS, which the reference server runs without',
  'Login using MD5': 'needs password logins (md5 in pg_hba.conf)',
  'Login using scram-sha-256': 'needs password logins (scram-sha-256 in pg_hba.conf)',
  'Parallel connections using scram-sha-256': 'needs password logins (scram-sha-256 in pg_hba.conf)',
  'Support dynamic password function': 'needs password logins (scram-sha-256 in pg_hba.conf)',
  'Support dynamic async password function': 'needs password logins (scram-sha-256 in pg_hba.conf)',
  'throws correct error when authentication fails': 'needs password logins (md5 in pg_hba.conf)',
  'Unix socket': 'needs a Unix socket in /tmp',
  'Multiple hosts': 'needs two servers, on ports 5432 and 5433',
  'Connect using uri': 'connects to port 5432, written in the test',
  'Custom socket': 'connects to port 5432, written in the test',
};
