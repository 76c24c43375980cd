/**
 * @module
 * RawPGlite.execRaw answers exactly what execProtocolRawSync answers, synchronously, and keeps nothing of it.
 */
import fs from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { query } from './protocol.js';
import { RawPGlite } from './raw-pglite.js';
import { ensureTemplate } from './template.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

describe('RawPGlite.execRaw', () => {
  let pglite: RawPGlite;
  beforeAll(async () => {
    const template = await ensureTemplate();
    pglite = await RawPGlite.open({ loadDataDir: new Blob([fs.readFileSync(template.tarball)]) });
  });
  afterAll(async () => {
    if (!pglite.closed) await pglite.close();
  });

  it('answers exactly what execProtocolRawSync answers, also when the answer comes in many pieces', () => {
    const sql = query("SELECT i, repeat('x', 100) FROM generate_series(1, 20000) AS i");
    const raw = pglite.execRaw(sql);
    expect(raw.length).toBeGreaterThan(2_000_000);
    expect(raw.equals(Buffer.from(pglite.execProtocolRawSync(sql)))).toBe(true);
    expect(raw.subarray(-6).toString('latin1')).toBe('Z\0\0\0\x05I'); // ends with ReadyForQuery
  });

  it('keeps nothing of the answers it gives', async () => {
    const sql = query('SELECT generate_series(1, 10)');
    const collect = async () => {
      await new Promise(setImmediate); // pending promise jobs hold memory until they run
      gc();
    };
    for (let i = 0; i < 1000; i++) pglite.execRaw(sql);
    await collect();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 20_000; i++) pglite.execRaw(sql);
    await collect();
    // execProtocolRawSync keeps about 1.5 kB a query here: 30 MB.
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(5 * 1024 * 1024);
  });

  it('throws synchronously what the engine throws', async () => {
    await pglite.close();
    expect(() => pglite.execRaw(query('SELECT 1'))).toThrow();
  });
});
