/**
 * @module
 * TLS for the database ports (`daemon/router.ts`): a client's SSLRequest is answered 'S' when the server has a
 * certificate, and the connection goes on inside TLS (node:tls on the same socket); without one it is answered 'N'
 * and goes on in plain text. Loading the certificate waits for the first client that asks, so plain-text clients never pay for it.
 * @see https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-SSL
 */
import type net from 'node:net';
import tls from 'node:tls';

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
