import { createServer } from 'node:http';

// The floor: a bare node:http server doing the same work without any framework (read the body,
// parse JSON, answer JSON).
const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const input = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { name: string };
    const body = JSON.stringify({ saved: true, name: input.name });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address && typeof address === 'object') console.log(JSON.stringify({ port: address.port }));
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
