/** @module The version of pgdev itself, read from its package.json. */
import fs from 'node:fs';

export const PGDEV_VERSION: string = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;
