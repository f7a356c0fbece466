// node's http module twin of examples/hello.c, the peer for bench/run.py.
// Run: PORT=8080 node node_app.js   (one process, as every contender gets)
'use strict';
const http = require('http');

const JSON_TYPE = { 'Content-Type': 'application/json' };
const USER = /^\/users\/([^/]+)$/;

function send(res, status, headers, body) {
  headers['Content-Length'] = Buffer.byteLength(body);
  res.writeHead(status, headers);
  res.end(body);
}

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/') {
    return send(res, 200, { 'Content-Type': 'text/plain' }, 'Hello, World!');
  }
  if (req.method === 'GET' && req.url === '/json') {
    return send(res, 200, JSON_TYPE, JSON.stringify({ message: 'Hello, World!' }));
  }
  const user = req.method === 'GET' && USER.exec(req.url);
  if (user) {
    return send(res, 200, JSON_TYPE, JSON.stringify({ id: decodeURIComponent(user[1]) }));
  }
  if (req.method === 'POST' && req.url === '/echo') {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const type = req.headers['content-type'] || 'application/octet-stream';
      send(res, 200, { 'Content-Type': type }, Buffer.concat(chunks));
    });
    return undefined;
  }
  return send(res, 404, { 'Content-Type': 'text/plain' }, 'Not Found');
});

// Idle keep-alive connections stay open as long as the bench holds them.
server.keepAliveTimeout = 600000;
server.headersTimeout = 610000;
server.listen(Number(process.env.PORT || 8080), '127.0.0.1');
