/**
 * @module
 * A stand-in npm registry on a loopback port for the executor-fetching tests: it publishes tarballs built here
 * (with the integrity hash it announces, or a wrong one), so that fetching, integrity checks and "no such version"
 * run through pacote for real without the network. `unreachableRegistry` is a URL where nothing listens.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as tar from 'tar';

export type FakePackage = {
  readonly version: string;
  /** The module's source (CommonJS). */
  readonly source: string;
  /** Announce an integrity hash that does not match the tarball. */
  readonly wrongIntegrity?: boolean;
};

export type NpmRegistry = {
  readonly url: string;
  /** How many tarballs were downloaded. */
  readonly downloads: number;
  close(): Promise<void>;
};

export const unreachableRegistry = 'http://127.0.0.1:1/';

function tarball(name: string, pkg: FakePackage): Buffer {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pgdev-fake-package-'));
  try {
    fs.mkdirSync(path.join(dir, 'package', 'dist'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'package', 'package.json'), JSON.stringify({ name, version: pkg.version, main: 'dist/index.js' }));
    fs.writeFileSync(path.join(dir, 'package', 'dist', 'index.js'), pkg.source);
    const file = path.join(dir, 'package.tgz');
    tar.c({ gzip: true, cwd: dir, file, sync: true, portable: true }, ['package']);
    return fs.readFileSync(file);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Serves one package, `name`, with the given versions. */
export async function startNpmRegistry(name: string, packages: FakePackage[]): Promise<NpmRegistry> {
  const tarballs = new Map(packages.map((pkg) => [`/tarballs/${pkg.version}.tgz`, { pkg, bytes: tarball(name, pkg) }]));
  let downloads = 0;
  const server = http.createServer((request, response) => {
    const url = request.url ?? '/';
    const file = tarballs.get(url);
    if (file) {
      downloads++;
      response.writeHead(200, { 'content-type': 'application/octet-stream' }).end(file.bytes);
      return;
    }
    if (decodeURIComponent(url).toLowerCase() !== `/${name}`) {
      response.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
      return;
    }
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const versions = Object.fromEntries(
      [...tarballs].map(([tarballPath, { pkg, bytes }]) => {
        const hashed = pkg.wrongIntegrity ? Buffer.concat([bytes, Buffer.from('x')]) : bytes;
        const integrity = `sha512-${crypto.createHash('sha512').update(hashed).digest('base64')}`;
        return [pkg.version, { name, version: pkg.version, dist: { tarball: `${base}${tarballPath}`, integrity } }];
      }),
    );
    const latest = packages.at(-1)?.version;
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ name, 'dist-tags': latest ? { latest } : {}, versions }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    get downloads() {
      return downloads;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
