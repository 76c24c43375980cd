/**
 * @module
 * The errors of a failed `CREATE DATABASE ... TEMPLATE` copy: what failed, on which file, and what to do, with the
 * SQLSTATE Postgres gives that file error; never a command line. Each errno code is made as Node's fs reports it.
 */
import { describe, expect, it } from 'vitest';
import { SqlError } from '../../gateway/backend-error.js';
import { copyError } from './databases.js';

const file = '/home/me/.local/share/pgdev/servers/default/databases/16385.copying/base/5/1259';

/** An error shaped as Node's fs rejects with. */
const fsError = (code: string) => Object.assign(new Error(`${code}: something, copyfile 'a' -> 'b'`), { code, path: file, syscall: 'copyfile' });

describe('copyError', () => {
  const cases: Array<[code: string, sqlState: string, message: string, hint: RegExp]> = [
    ['ENOSPC', '53100', 'could not copy database "t": no space left on device', /^free some disk space/],
    ['EDQUOT', '53100', 'could not copy database "t": no space left on device', /^free some disk space/],
    ['EACCES', '42501', `could not copy database "t": permission denied (${file})`, /read and write access to the server's folder/],
    ['EROFS', '42501', `could not copy database "t": permission denied (${file})`, /read and write access/],
    ['EMFILE', '53000', 'could not copy database "t": too many open files', /ulimit -n/],
    ['ENOTSUP', 'XX000', `could not copy database "t": its folder holds something other than files and folders (${file})`, /^remove it/],
    ['EIO', '58030', `could not copy database "t": error EIO (${file})`, /^check the disk/],
    ['ESTALE', 'XX000', `could not copy database "t": error ESTALE (${file})`, /^check the disk/],
  ];
  for (const [code, sqlState, message, hint] of cases) {
    it(`says what ${code} means and what to do`, () => {
      const error = copyError('t', fsError(code)) as SqlError;
      expect(error).toBeInstanceOf(SqlError);
      expect({ sqlState: error.sqlState, message: error.message }).toEqual({ sqlState, message });
      expect(error.hint).toMatch(hint);
      expect(error.message).not.toMatch(/\bcp\b|Command failed|copyfile/);
    });
  }
});
