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

export type StandInRegistry = NpmRegistry & {
  /** The temporary XDG_CACHE_HOME. */
  readonly cacheHome: string;
  /** Stops the registry, puts both variables back and deletes the cache folder. */
  restore(): Promise<void>;
};

/** Starts a registry for `name` and points this process at it: `npm_config_registry`, and a new temporary XDG_CACHE_HOME. */
export async function useStandInRegistry(name: string, packages: FakePackage[]): Promise<StandInRegistry> {
  const saved = { XDG_CACHE_HOME: process.env.XDG_CACHE_HOME, npm_config_registry: process.env.npm_config_registry };
  const cacheHome = fs.mkdtempSync(path.join(os.tmpdir(), 'pgdev-cache-'));
  const registry = await startNpmRegistry(name, packages);
  process.env.XDG_CACHE_HOME = cacheHome;
  process.env.npm_config_registry = registry.url;
  return {
    url: registry.url,
    get downloads() {
      return registry.downloads;
    },
    close: () => registry.close(),
    cacheHome,
    async restore() {
      await registry.close();
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
      fs.rmSync(cacheHome, { recursive: true, force: true });
    },
  };
}
