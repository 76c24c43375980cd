/**
 * @module
 * The self-signed TLS certificate of a server, made on first need and kept in its state folder so that it stays the
 * same across restarts. `selfsigned` makes it (node:crypto makes keys, not X.509 certificates) and is loaded only
 * then: a server whose clients never ask for TLS never pays for it.
 */
import fs from 'node:fs';
import { writeFileAtomic } from './files.js';

export type Certificate = { readonly key: string; readonly cert: string };

const TEN_YEARS_MS = 10 * 365 * 24 * 60 * 60 * 1000;

/** Reads the key and certificate in `keyFile` and `certFile`, creating both if either is missing or unreadable. */
export async function ensureCertificate(keyFile: string, certFile: string): Promise<Certificate> {
  try {
    return { key: fs.readFileSync(keyFile, 'utf8'), cert: fs.readFileSync(certFile, 'utf8') };
  } catch {
    const created = await createCertificate();
    writeFileAtomic(keyFile, created.key, 0o600);
    writeFileAtomic(certFile, created.cert, 0o644);
    return created;
  }
}

/** A P-256 key and a certificate for `localhost`, 127.0.0.1 and ::1, valid for ten years. */
export async function createCertificate(): Promise<Certificate> {
  const { generate } = await import('selfsigned');
  const pems = await generate([{ name: 'commonName', value: 'localhost' }, { name: 'organizationName', value: 'pgdev' }], {
    keyType: 'ec',
    curve: 'P-256',
    notAfterDate: new Date(Date.now() + TEN_YEARS_MS),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }, { type: 7, ip: '::1' }] },
    ],
  });
  return { key: pems.private, cert: pems.cert };
}
