// The network floor: a wire-protocol server that does no database work. It accepts any startup and answers every
// simple query at once with one canned row, so pgbench against it measures only the loopback round trip, pgbench
// itself and Node's socket handling: the most any Node server can reach on this machine, before a database runs.
// The ceiling for a PGlite server over TCP is then 1 / (1/floor + 1/in-process rate).
// Usage: node bench/subjects/noop-server.js --port P [--busy-poll-us N]   (needs `npm run build` for the busy poll)
//   pgbench -n -M simple -S -c 1 -T 4 -h 127.0.0.1 -p P -U postgres template1
import net from 'node:net';
import { createBusyPoll } from '../../dist/engine/busy-poll.js';
import { parseArgs } from '../lib/args.js';

const args = parseArgs();
const poll = createBusyPoll({ micros: args['busy-poll-us'] === undefined ? undefined : Number(args['busy-poll-us']) });

const message = (type, ...parts) => {
  const body = Buffer.concat(parts.map((part) => (typeof part === 'string' ? Buffer.from(`${part}\0`) : Buffer.from(part))));
  const out = Buffer.alloc(5 + body.length);
  out[0] = type.charCodeAt(0);
  out.writeUInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
};
const int32 = (n) => [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
const ready = message('Z', [0x49]); // ReadyForQuery, idle
const column = (name) => [...Buffer.from(`${name}\0`), ...int32(0), 0, 0, ...int32(23), 0, 4, ...int32(-1), 0, 0];
const answer = (values) =>
  Buffer.concat([
    message('T', [0, values.length, ...values.flatMap((_, i) => column(`c${i}`))]),
    message('D', [0, values.length, ...values.flatMap((v) => (v === null ? int32(-1) : [...int32(v.length), ...Buffer.from(v)]))]),
    message('C', 'SELECT 1'),
    ready,
  ]);
const oneValue = answer(['1']);
// pgbench asks whether pgbench_accounts is partitioned: three columns.
const partitionCheck = answer(['1', null, '0']);
const startup = Buffer.concat([message('R', int32(0)), message('S', 'server_version', '18.0'), ready]);

net
  .createServer({ noDelay: true }, (socket) => {
    let started = false;
    let buffered = Buffer.alloc(0);
    socket.on('error', () => undefined);
    socket.on('data', (chunk) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (!started && buffered.length >= 8 && buffered.length >= buffered.readUInt32BE(0)) {
        const length = buffered.readUInt32BE(0);
        const code = buffered.readUInt32BE(4);
        buffered = buffered.subarray(length);
        if (code === 80877103) socket.write('N'); // SSLRequest
        else {
          started = true;
          socket.write(startup);
        }
      }
      while (started && buffered.length >= 5 && buffered.length >= 1 + buffered.readUInt32BE(1)) {
        const end = 1 + buffered.readUInt32BE(1);
        const type = buffered[0];
        const text = buffered.subarray(5, end).toString();
        buffered = buffered.subarray(end);
        if (type === 0x51) {
          socket.write(text.includes('partstrat') ? partitionCheck : oneValue);
          poll.touch();
        } else if (type === 0x58) socket.end();
      }
    });
  })
  .listen(Number(args.port), '127.0.0.1', () => console.log('ready'));
