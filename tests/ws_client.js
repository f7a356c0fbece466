// An independent WebSocket client for tests/test_websocket.py: Node's ws
// (npm, pinned in tests/browser/package.json) against tests/ws_server.c.
// Prints "ok NAME" or "FAIL NAME: why" for each check and exits 1 if one
// failed; the suite then reads the server's /counts for the close codes,
// under ids that start with ID_PREFIX.
//
// Usage: node tests/ws_client.js PORT ID_PREFIX
"use strict";
const path = require("path");
const WebSocket = require(path.join(__dirname, "browser", "node_modules", "ws"));

const [port, prefix] = process.argv.slice(2);
const base = `ws://127.0.0.1:${port}`;

function expect(cond, msg) {
    if (!cond) throw new Error(msg);
}

// A connection whose messages queue up until asked for, and whose close is
// a promise of {code, reason}.
function open(url, protocols) {
    return new Promise((resolve, reject) => {
        const ws = new WebSocket(url, protocols || [], { maxPayload: 4 << 20 });
        const queue = [];
        let waiter = null;
        ws.messages = () => new Promise((res) => {
            if (queue.length) res(queue.shift());
            else waiter = res;
        });
        ws.on("message", (data, isBinary) => {
            const msg = { data: isBinary ? data : data.toString("utf8"), isBinary };
            if (waiter) {
                const w = waiter;
                waiter = null;
                w(msg);
            } else queue.push(msg);
        });
        ws.closed = new Promise((res) => {
            ws.on("close", (code, reason) => res({ code, reason: reason.toString() }));
        });
        ws.once("open", () => resolve(ws));
        ws.on("error", reject); // after open, an error also ends in a close, which the checks see
    });
}

async function echo() {
    const ws = await open(`${base}/echo?id=${prefix}-echo`, ["superchat", "chat"]);
    expect(ws.protocol === "chat", `subprotocol ${JSON.stringify(ws.protocol)}`);
    for (const msg of ["h\u00e9llo \u{1F600}", "", Buffer.alloc(200, 0xff), Buffer.alloc(0)]) {
        ws.send(msg);
        const got = await ws.messages();
        expect(got.isBinary === Buffer.isBuffer(msg), `type of ${JSON.stringify(msg)} changed`);
        const same = Buffer.isBuffer(msg) ? msg.equals(got.data) : got.data === msg;
        expect(same, `sent ${msg}, got ${got.data}`);
    }
    ws.close(1000);
    await ws.closed;
}

async function fragments() {
    const ws = await open(`${base}/echo?id=${prefix}-fragments`);
    ws.send("frag", { fin: false });
    ws.send("", { fin: false });
    ws.send("mented \u{1F600}", { fin: true });
    let got = await ws.messages();
    expect(got.data === "fragmented \u{1F600}", `text fragments came back as ${got.data}`);
    const big = Buffer.alloc(80000, 0x61);
    ws.send(Buffer.from("b"), { binary: true, fin: false });
    ws.send(big, { binary: true, fin: true });
    got = await ws.messages();
    const joined = Buffer.concat([Buffer.from("b"), big]);
    expect(got.isBinary && got.data.equals(joined), "binary fragments damaged");
    ws.close(1000);
    await ws.closed;
}

async function ping() {
    const ws = await open(`${base}/echo?id=${prefix}-ping`);
    for (const data of [Buffer.alloc(0), Buffer.from("ping data"), Buffer.alloc(125, 0x78)]) {
        const pong = new Promise((res) => ws.once("pong", res));
        ws.ping(data);
        const got = await pong;
        expect(got.equals(data), `pong ${got} for ping ${data}`);
    }
    ws.close(1000);
    await ws.closed;
}

async function large() {
    const ws = await open(`${base}/echo?id=${prefix}-large`);
    const bin = Buffer.alloc(1 << 20);
    for (let i = 0; i < bin.length; i++) bin[i] = i & 255;
    ws.send(bin);
    let got = await ws.messages();
    expect(got.isBinary && got.data.equals(bin), "1 MiB binary message damaged");
    const text = "\u00e9".repeat(1 << 19); // 1 MiB of UTF-8
    ws.send(text);
    got = await ws.messages();
    expect(got.data === text, "1 MiB text message damaged");
    ws.close(1000);
    await ws.closed;
}

async function clientClose() {
    const ws = await open(`${base}/echo?id=${prefix}-client-close`);
    ws.close(4001, "client bye");
    const { code } = await ws.closed;
    expect(code === 4001, `server answered the close with ${code}`);
}

async function serverClose() {
    const ws = await open(`${base}/close/4002?id=${prefix}-server-close`);
    ws.send("close, please");
    const { code, reason } = await ws.closed;
    expect(code === 4002 && reason === "bye", `closed with ${code} ${JSON.stringify(reason)}`);
}

async function push() {
    const ws = await open(`${base}/push?n=20&size=100000&id=${prefix}-push`);
    for (let i = 0; i < 20; i++) {
        const got = await ws.messages();
        const want = Buffer.alloc(100000, i & 255);
        want.writeUInt32BE(i, 0);
        expect(got.isBinary && got.data.equals(want), `message ${i} damaged`);
    }
    const { code } = await ws.closed;
    expect(code === 1000, `closed with ${code}`);
}

async function deferred() {
    const ws = await open(`${base}/deferred?id=${prefix}-deferred`);
    ws.send("from a resumed answer");
    const got = await ws.messages();
    expect(got.data === "from a resumed answer", "no echo");
    ws.close(1000);
    await ws.closed;
}

async function main() {
    let failed = 0;
    for (const check of [echo, fragments, ping, large, clientClose, serverClose, push, deferred]) {
        let timer;
        const timeout = new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error("no end within 20 s")), 20000);
        });
        try {
            await Promise.race([check(), timeout]);
            console.log(`ok ${check.name}`);
        } catch (e) {
            failed++;
            console.log(`FAIL ${check.name}: ${e.message}`);
        }
        clearTimeout(timer);
    }
    process.exit(failed ? 1 : 0);
}

main();
