// Experiment (not part of the product): unary tally.v1.Counter/Allocate served on Node's own
// http2 module with hand-rolled protobuf instead of grpc-js, over the same node, to measure how
// much of the per-request cost is grpc-js. Usage (after `npm run build`):
//   node scripts/experiments/raw-http2-unary.mjs DATA_DIR PORT [STANDBY_HOST:PORT]
// then drive it with h2load and raw gRPC frames (see scripts/bench-lib.mjs grpcFrame).
// Results (issue 3 note): standalone 256 in flight 33.3K/s vs 20.9K/s with grpc-js; replicated
// 26.6K/s vs 19.0K/s at 256, 16.5K/s vs 12.4K/s at 50.
import http2 from 'node:http2';
import { createRequire } from 'node:module';
const require = createRequire(new URL('../../package.json', import.meta.url));
const { openNode } = require('./dist/node/node.js');
const { createMetrics } = require('./dist/core/metrics.js');
const { grpcDialer } = require('./dist/server/replication-service.js');
const pino = require('pino');
const [dataDir, port, standby] = process.argv.slice(2);
const node = await openNode({
  id: 'raw',
  dataDir,
  logger: pino({ level: 'warn' }),
  metrics: createMetrics({ defaults: false }),
  role: standby ? 'primary' : 'standalone',
  standby,
  dial: grpcDialer,
  advertiseAddress: `127.0.0.1:${port}`,
});
function varint(buf, at, v) {
  while (v > 127) {
    buf[at++] = (v & 127) | 128;
    v = Math.floor(v / 128);
  }
  buf[at++] = v;
  return at;
}
function readVarint(buf, at) {
  let v = 0,
    mul = 1,
    b;
  do {
    b = buf[at++];
    v += (b & 127) * mul;
    mul *= 128;
  } while (b & 128);
  return [v, at];
}
function parse(msg) {
  let at = 0,
    ns = '',
    count = 0;
  while (at < msg.length) {
    const [tag, a1] = readVarint(msg, at);
    at = a1;
    if (tag === 0x0a) {
      const [len, a2] = readVarint(msg, at);
      ns = msg.toString('latin1', a2, a2 + len);
      at = a2 + len;
    } else if (tag === 0x10) {
      const [v, a2] = readVarint(msg, at);
      count = v;
      at = a2;
    } else if (tag === 0x18) {
      const [, a2] = readVarint(msg, at);
      at = a2;
    } else throw new Error('bad');
  }
  return [ns, count];
}
const hdrs = { ':status': 200, 'content-type': 'application/grpc' };
const server = http2.createServer();
server.on('stream', (stream) => {
  const chunks = [];
  stream.on('data', (c) => chunks.push(c));
  stream.on('end', () => {
    const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    let ns, count;
    try {
      [ns, count] = parse(body.subarray(5));
    } catch {
      stream.respond(
        { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '3' },
        { endStream: true },
      );
      return;
    }
    node.allocate(ns, count, undefined, (err, r) => {
      if (stream.destroyed) return;
      if (err) {
        stream.respond(
          {
            ':status': 200,
            'content-type': 'application/grpc',
            'grpc-status': '14',
            'grpc-message': encodeURIComponent(err.message),
          },
          { endStream: true },
        );
        return;
      }
      const out = Buffer.allocUnsafe(64);
      let at = 5;
      out[at++] = 0x08;
      at = varint(out, at, r.first);
      out[at++] = 0x10;
      at = varint(out, at, r.count);
      out[at++] = 0x20;
      at = varint(out, at, r.epoch);
      out[at++] = 0x28;
      at = varint(out, at, r.index);
      out[0] = 0;
      out.writeUInt32BE(at - 5, 1);
      stream.respond(hdrs, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(out.subarray(0, at));
    });
  });
});
server.listen(Number(port), '127.0.0.1', () => console.log('raw serving', port));
process.on('SIGTERM', async () => {
  server.close();
  await node.close();
  process.exit(0);
});
