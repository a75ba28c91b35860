// A stand-in OTLP/HTTP endpoint for `bench/serving --tracing`: acknowledges every export (200 `{}`) without
// parsing it, and answers GET /stats with what it received. A child process of its own, so a busy load
// generator cannot slow exports down (which would make the bounded span queue drop, and tracing look cheaper).
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const stats = { posts: 0, bytes: 0 };
const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/stats') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(stats));
    return;
  }
  req.on('data', (c: Buffer) => (stats.bytes += c.length));
  req.on('end', () => {
    stats.posts++;
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
});
server.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` })}\n`);
});
