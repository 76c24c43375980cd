/**
 * The few frontend messages in-process PGlite is fed directly, byte for byte what a TCP client would send; and the
 * CancelRequest a client sends on a connection of its own.
 */
const enc = new TextEncoder();

function msg(type, body) {
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = type.charCodeAt(0);
  out.writeUInt32BE(4 + body.length, 1);
  out.set(body, 5);
  return out;
}

const cstr = (s) => Buffer.concat([Buffer.from(enc.encode(s)), Buffer.from([0])]);

/** A simple-protocol Query, as psql and pgbench (`-M simple`) send. */
export function simpleQuery(sql) {
  return msg('Q', cstr(sql));
}

/**
 * An unnamed extended-protocol batch with text parameters: Parse, Bind, Describe portal, Execute, Sync, which is
 * exactly what node-postgres sends for `client.query(text, values)`.
 */
export function extendedQuery(sql, params) {
  const parse = msg('P', Buffer.concat([cstr(''), cstr(sql), Buffer.from([0, 0])]));
  const parts = [cstr(''), cstr(''), Buffer.from([0, 0]), Buffer.alloc(2)];
  parts[3].writeUInt16BE(params.length);
  for (const p of params) {
    const v = Buffer.from(enc.encode(String(p)));
    const len = Buffer.alloc(4);
    len.writeInt32BE(v.length);
    parts.push(len, v);
  }
  parts.push(Buffer.from([0, 0]));
  const bind = msg('B', Buffer.concat(parts));
  const describe = msg('D', Buffer.concat([Buffer.from('P'), cstr('')]));
  const execute = msg('E', Buffer.concat([cstr(''), Buffer.from([0, 0, 0, 0])]));
  const sync = msg('S', Buffer.alloc(0));
  return Buffer.concat([parse, bind, describe, execute, sync]);
}

/** A CancelRequest (16 bytes, no type byte): length, the code 80877102, the backend's pid and secret key (BackendKeyData). */
export function cancelRequest(pid, secretKey) {
  const out = Buffer.alloc(16);
  out.writeInt32BE(16, 0);
  out.writeInt32BE(80877102, 4);
  out.writeInt32BE(pid | 0, 8);
  out.writeInt32BE(secretKey | 0, 12);
  return out;
}

/** The first ErrorResponse's message in a backend reply, or undefined. */
export function errorIn(reply) {
  const buf = Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength);
  let off = 0;
  while (off + 5 <= buf.length) {
    const type = buf[off];
    const len = buf.readUInt32BE(off + 1);
    if (type === 0x45) {
      // Fields: a code byte then a C string, up to a zero byte; 'M' is the message.
      let p = off + 5;
      while (p < off + 1 + len && buf[p] !== 0) {
        const code = String.fromCharCode(buf[p]);
        const end = buf.indexOf(0, p + 1);
        if (code === 'M') return buf.toString('utf8', p + 1, end);
        p = end + 1;
      }
      return 'error';
    }
    off += 1 + len;
  }
  return undefined;
}
