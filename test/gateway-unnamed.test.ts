/**
 * @module
 * The unnamed prepared statement belongs to its connection across Syncs, as on a real server: a client that parses
 * it, lets others run, then binds it again gets its own statement back, not whatever another client parsed last.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './support/gateway-server.js';
import { WireClient, bind, dataRow, execute, parse, simpleQuery, sync } from './support/wire.js';

let server: TestGateway;

beforeAll(async () => {
  server = await startTestGateway({ label: 'unnamed' });
});

afterAll(async () => {
  await server?.close();
});

const rows = (messages: Array<{ type: string; body: Buffer }>) => messages.filter((m) => m.type === 'D').map((m) => dataRow(m.body));
const types = (messages: Array<{ type: string }>) => messages.map((m) => m.type).join('');

describe('gateway: the unnamed statement', () => {
  it("survives another client's unnamed Parse and simple queries between two Syncs", async () => {
    const a = await WireClient.connect(server.port);
    const b = await WireClient.connect(server.port);
    try {
      expect(types(await a.request(parse('', "SELECT 'from a'::text AS who"), sync()))).toBe('1Z');
      expect(types(await b.request(parse('', "SELECT 'from b'::text AS who, 2 AS n"), sync()))).toBe('1Z');
      await b.request(simpleQuery('SELECT 1'));

      // A binds the unnamed statement it parsed earlier: its own, and no extra ParseComplete shows up.
      const answer = await a.request(bind('', ''), execute(''), sync());
      expect(types(answer)).toBe('2DCZ');
      expect(rows(answer)).toEqual([['from a']]);
      // B's own unnamed statement is still B's.
      expect(rows(await b.request(bind('', ''), execute(''), sync()))).toEqual([['from b', '2']]);
      // And when nobody else ran in between, nothing is replayed.
      expect(types(await b.request(bind('', ''), execute(''), sync()))).toBe('2DCZ');
    } finally {
      a.end();
      b.end();
    }
  });
});
