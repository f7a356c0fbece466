// node's WebSocket echo with the `ws` package (the one most node apps use), the
// peer of ws_turbo.c for bench/ws.py: ws://127.0.0.1:PORT/echo sends every
// message back as it came (text or binary). One process, ws's defaults
// (no permessage-deflate), without its optional native add-ons.
// ws comes from tests/browser/node_modules (npm install --prefix tests/browser).
// Run: PORT=8080 node ws_node.js
'use strict';
const path = require('path');
const { WebSocketServer } = require(path.join(__dirname, '..', '..', 'tests', 'browser', 'node_modules', 'ws'));

const wss = new WebSocketServer({
  host: '127.0.0.1', port: Number(process.env.PORT || 8080), path: '/echo', backlog: 4096,
});
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
