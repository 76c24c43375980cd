/**
 * The statements every subject runs, defined once so that the TCP subjects and in-process PGlite run exactly the
 * same SQL.
 */

/** pgbench's own initialisation with server-side data generation (`pgbench -i -s 1 -I dtGvp`), for in-process PGlite. */
export function pgbenchInitSql(scale = 1) {
  return [
    'drop table if exists pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers',
    'create table pgbench_history(tid int,bid int,aid int,delta int,mtime timestamp,filler char(22))',
    'create table pgbench_tellers(tid int not null,bid int,tbalance int,filler char(84)) with (fillfactor=100)',
    'create table pgbench_accounts(aid int not null,bid int,abalance int,filler char(84)) with (fillfactor=100)',
    'create table pgbench_branches(bid int not null,bbalance int,filler char(88)) with (fillfactor=100)',
    'begin',
    'truncate table pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers',
    `insert into pgbench_branches(bid,bbalance) select bid, 0 from generate_series(1, ${scale}) as bid`,
    `insert into pgbench_tellers(tid,bid,tbalance) select tid, (tid - 1) / 10 + 1, 0 from generate_series(1, ${10 * scale}) as tid`,
    `insert into pgbench_accounts(aid,bid,abalance,filler) select aid, (aid - 1) / 100000 + 1, 0, '' from generate_series(1, ${100000 * scale}) as aid`,
    'commit',
    'vacuum analyze pgbench_branches',
    'vacuum analyze pgbench_tellers',
    'vacuum analyze pgbench_accounts',
    'vacuum analyze pgbench_history',
    'alter table pgbench_branches add primary key (bid)',
    'alter table pgbench_tellers add primary key (tid)',
    'alter table pgbench_accounts add primary key (aid)',
  ];
}

const randomInt = (lo, hi) => lo + Math.floor(Math.random() * (hi - lo + 1));

/** One transaction of pgbench's built-in `select-only` script (`-S`), as the simple-protocol statements it sends. */
export function selectOnlyTxn(scale = 1) {
  return [`SELECT abalance FROM pgbench_accounts WHERE aid = ${randomInt(1, 100000 * scale)};`];
}

/** One transaction of pgbench's built-in `tpcb-like` script (the default). */
export function tpcbTxn(scale = 1) {
  const aid = randomInt(1, 100000 * scale);
  const bid = randomInt(1, scale);
  const tid = randomInt(1, 10 * scale);
  const delta = randomInt(-5000, 5000);
  return [
    'BEGIN;',
    `UPDATE pgbench_accounts SET abalance = abalance + ${delta} WHERE aid = ${aid};`,
    `SELECT abalance FROM pgbench_accounts WHERE aid = ${aid};`,
    `UPDATE pgbench_tellers SET tbalance = tbalance + ${delta} WHERE tid = ${tid};`,
    `UPDATE pgbench_branches SET bbalance = bbalance + ${delta} WHERE bid = ${bid};`,
    `INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (${tid}, ${bid}, ${aid}, ${delta}, CURRENT_TIMESTAMP);`,
    'END;',
  ];
}

export const BULK_TABLE = 'bench_bulk';
export const BULK_RESET_SQL = `DROP TABLE IF EXISTS ${BULK_TABLE}; CREATE TABLE ${BULK_TABLE} (id int PRIMARY KEY, name text NOT NULL, value double precision NOT NULL)`;

/** One INSERT statement with `rows` rows of literals (run inside BEGIN/COMMIT). */
export function bulkInsertSql(rows) {
  const values = [];
  for (let i = 1; i <= rows; i++) values.push(`(${i},'name-${i}',${i}.5)`);
  return `INSERT INTO ${BULK_TABLE} (id, name, value) VALUES ${values.join(',')}`;
}

/** The same rows as COPY text format. */
export function bulkCopyText(rows) {
  const lines = [];
  for (let i = 1; i <= rows; i++) lines.push(`${i}\tname-${i}\t${i}.5\n`);
  return lines.join('');
}

export const COPY_SQL = `COPY ${BULK_TABLE} (id, name, value) FROM STDIN`;
