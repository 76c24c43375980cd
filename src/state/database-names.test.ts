import { describe, expect, it } from 'vitest';
import { SqlError } from '../gateway/backend-error.js';
import {
  DEFAULT_DATABASE, checkCreateOptions, checkDatabaseName, isDefaultDatabaseName, unknownDatabase,
} from './database-names.js';

function refusal(check: () => void): { sqlState: string; message: string } | undefined {
  try {
    check();
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(SqlError);
    return { sqlState: (error as SqlError).sqlState, message: (error as SqlError).message };
  }
}

describe('database names', () => {
  it('postgres and template1 reach the default database; nothing else does', () => {
    expect(DEFAULT_DATABASE).toBe('postgres');
    expect(isDefaultDatabaseName('postgres')).toBe(true);
    expect(isDefaultDatabaseName('template1')).toBe(true);
    for (const name of ['template0', 'Postgres', 'shadow', '', 'postgres ']) expect(isDefaultDatabaseName(name)).toBe(false);
  });

  it('a new name is 1 to 63 bytes, counted in UTF-8 as Postgres counts them', () => {
    expect(refusal(() => checkDatabaseName('a'.repeat(63)))).toBeUndefined();
    expect(refusal(() => checkDatabaseName('my db; "quoted"'))).toBeUndefined();
    expect(refusal(() => checkDatabaseName(''))).toEqual({ sqlState: '42602', message: 'zero-length delimited identifier' });
    expect(refusal(() => checkDatabaseName('a'.repeat(64)))).toEqual({
      sqlState: '42602', message: `database name "${'a'.repeat(64)}" is too long: at most 63 bytes`,
    });
    // 32 characters, 64 bytes.
    expect(refusal(() => checkDatabaseName('é'.repeat(32)))?.message).toContain('is too long: at most 63 bytes');
  });

  it('CREATE DATABASE takes UTF8 under any of its spellings and refuses other encodings with 22023', () => {
    for (const encoding of ['UTF8', 'utf-8', 'Unicode', '6', 'DEFAULT']) expect(refusal(() => checkCreateOptions({ encoding }))).toBeUndefined();
    expect(refusal(() => checkCreateOptions({ locale: 'C', lc_collate: 'C' }))).toBeUndefined();
    expect(refusal(() => checkCreateOptions({ encoding: 'LATIN1' }))).toEqual({
      sqlState: '22023', message: 'encoding "LATIN1" is not supported: pgdev databases are UTF8',
    });
  });

  it('an unknown name is answered with the list of those the server has', () => {
    expect(unknownDatabase('nope', ['postgres', 'app', 'test_1']).message).toBe(
      'unknown database "nope"; this server has postgres (also called template1), app, test_1 and shadow',
    );
    expect(unknownDatabase('nope', []).message).toBe('unknown database "nope"; this server has postgres (also called template1) and shadow');
  });
});
