/** The runner's output: a plain-text table, the line of totals, and the Markdown comparison for bench/SUITES.md. */

const UNITS = { 'node-postgres': 'files', 'postgres.js': 'tests' };
const STATUSES = ['pass', 'fail', 'timeout', 'never finished', 'set aside'];

function counts(results) {
  const by = Object.fromEntries(STATUSES.map((s) => [s, 0]));
  for (const r of results) by[r.status]++;
  return { ...by, counted: results.length - by['set aside'] };
}

/** `node-postgres: N/M files passed; postgres.js: N/M tests passed` (set-aside tests are in neither N nor M). */
export function summaryLine(run) {
  return Object.entries(run.suites)
    .map(([id, results]) => {
      const c = counts(results);
      return `${id}: ${c.pass}/${c.counted} ${UNITS[id]} passed`;
    })
    .join('; ');
}

export function summaryTable(run) {
  const rows = [['suite', ...STATUSES]];
  for (const [id, results] of Object.entries(run.suites)) {
    const c = counts(results);
    rows.push([id, ...STATUSES.map((s) => String(c[s]))]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const lines = [`against ${run.against} (${run.version})`, ...rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i])).join('  '))];
  const failing = Object.entries(run.suites).flatMap(([id, results]) =>
    results.filter((r) => r.status !== 'pass' && r.status !== 'set aside').map((r) => `  ${id}  ${r.status}  ${r.id}${r.detail ? `: ${r.detail}` : ''}`),
  );
  if (failing.length) lines.push('', 'not passed:', ...failing);
  return lines.join('\n');
}

const cell = (r) => (!r ? 'not run' : r.status === 'pass' ? 'pass' : r.status === 'set aside' ? 'set aside' : `**${r.status}**`);
const escape = (text) => text.replaceAll('|', '\\|').replaceAll('`', "'");

/** Both runs side by side, one row per node-postgres file and per postgres.js test. */
export function compareMarkdown(pgdev, postgres) {
  const out = [
    `pgdev ${pgdev.version} (${pgdev.date.slice(0, 10)}, Node ${pgdev.node}) against ${postgres.version} (${postgres.date.slice(0, 10)}, Node ${postgres.node}).`,
    '',
    '| suite | pgdev | PostgreSQL |',
    '| --- | --- | --- |',
  ];
  for (const id of Object.keys(pgdev.suites)) {
    const a = counts(pgdev.suites[id]);
    const b = counts(postgres.suites[id] ?? []);
    out.push(`| ${id} | ${a.pass}/${a.counted} ${UNITS[id]} | ${b.pass}/${b.counted} ${UNITS[id]} |`);
  }
  for (const id of Object.keys(pgdev.suites)) {
    const other = new Map((postgres.suites[id] ?? []).map((r) => [r.id, r]));
    out.push('', `### ${id}, ${id === 'node-postgres' ? 'file by file' : 'test by test'}`, '');
    out.push(`| ${id === 'node-postgres' ? 'file' : 'test (line)'} | pgdev | PostgreSQL |`, '| --- | --- | --- |');
    for (const r of pgdev.suites[id]) {
      const name = id === 'node-postgres' ? `\`${r.id}\`` : `${escape(r.id)} (${r.line})`;
      out.push(`| ${name} | ${cell(r)} | ${cell(other.get(r.id))} |`);
    }
  }
  return out.join('\n');
}
