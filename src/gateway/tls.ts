/**
 * @module
 * TLS for the database ports (`daemon/server/router.ts`): a client's SSLRequest is answered 'S' when the server has a
 * certificate, and the connection goes on inside TLS (node:tls on the same socket); without one it is answered 'N'
 * and goes on in plain text. Loading the certificate waits for the first client that asks, so plain-text clients never pay for it.
 * A client may also skip the SSLRequest and open with its TLS ClientHello (direct SSL negotiation, Postgres 17+,
 * libpq's and node-postgres's `sslnegotiation=direct`), offering the ALPN protocol `postgresql`.
 * @see https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-SSL
 */
import type net from 'node:net';
import { Duplex } from 'node:stream';
import tls from 'node:tls';

/** The first byte of a TLS record carrying a handshake message: how a ClientHello starts (RFC 8446, 5.1). */
export const TLS_HANDSHAKE_RECORD = 0x16;
/** The ALPN protocol a client must offer with direct SSL negotiation, as Postgres requires. */
export const POSTGRES_ALPN = 'postgresql';

/** A PEM private key and certificate. */
export type TlsCertificate = { readonly key: string; readonly cert: string };

/** The server side of TLS, shared by every connection of a gateway. */
export type TlsServer = {
  /** The secure context, created from the certificate on first use; rejects if the certificate cannot be had. */
  context(): Promise<tls.SecureContext>;
};

export function createTlsServer(certificate: () => Promise<TlsCertificate>): TlsServer {
  let context: Promise<tls.SecureContext> | undefined;
  return {
    context() {
      if (!context) {
        context = certificate().then(({ key, cert }) => tls.createSecureContext({ key, cert }));
        context.catch(() => (context = undefined)); // a failure is retried by the next client
      }
      return context;
    },
  };
}

/**
 * Answers an SSLRequest: 'S' and the server side of TLS on the same socket (returned: it carries the connection from
 * now on), or 'N' and undefined if the certificate cannot be had (the connection goes on in plain text). The caller
 * removes its 'data' listener first: a client that sends anything before the answer is reported as 'unencrypted
 * data', which Postgres refuses (CVE-2021-23214).
 */
export async function acceptTls(
  socket: net.Socket,
  server: TlsServer,
  log: (line: string) => void,
): Promise<tls.TLSSocket | undefined | 'unencrypted data'> {
  let early = false;
  const onEarlyData = () => (early = true);
  socket.on('data', onEarlyData);
  let context: tls.SecureContext | undefined;
  try {
    context = await server.context();
  } catch (error) {
    log(`no TLS certificate, SSL request declined: ${String(error)}`);
  } finally {
    socket.off('data', onEarlyData);
  }
  if (early) return 'unencrypted data';
  if (socket.destroyed) return undefined;
  socket.write(context ? 'S' : 'N');
  return context && new tls.TLSSocket(socket, { isServer: true, secureContext: context });
}

/**
 * Takes a connection that opened with a TLS ClientHello (`head`, the bytes read so far) into TLS: the server side of
 * TLS, once the handshake is done (the caller checks its `alpnProtocol`: Postgres refuses a client that did not
 * offer {@link POSTGRES_ALPN}), or undefined if the certificate cannot be had or the handshake failed (the socket
 * is closed).
 */
export async function acceptDirectTls(
  socket: net.Socket,
  head: Buffer,
  server: TlsServer,
  log: (line: string) => void,
): Promise<tls.TLSSocket | undefined> {
  let context: tls.SecureContext;
  try {
    context = await server.context();
  } catch (error) {
    log(`no TLS certificate, direct SSL connection closed: ${String(error)}`);
    socket.destroy();
    return undefined;
  }
  // The bytes already read must reach TLS first: a stream that replays them, then carries the socket.
  const carrier = new Duplex({
    read: () => void socket.resume(),
    write: (chunk: Buffer, _encoding, done) => void socket.write(chunk, done),
    final: (done) => {
      socket.end();
      done();
    },
    destroy: (error, done) => {
      socket.destroy();
      done(error);
    },
  });
  carrier.push(head);
  socket.on('data', (chunk: Buffer) => {
    if (!carrier.push(chunk)) socket.pause();
  });
  socket.on('end', () => carrier.push(null));
  socket.on('close', () => carrier.destroy());
  const tlsSocket = new tls.TLSSocket(carrier, { isServer: true, secureContext: context, ALPNProtocols: [POSTGRES_ALPN] });
  return new Promise((resolve) => {
    tlsSocket.once('secure', () => resolve(tlsSocket));
    tlsSocket.once('error', (error) => {
      log(`direct SSL handshake failed: ${error.message}`);
      tlsSocket.destroy();
      resolve(undefined);
    });
  });
}
