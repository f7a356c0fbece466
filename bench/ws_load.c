/* ws_load.c - the WebSocket load generator of bench/ws.py.

   One thread, one epoll loop, nonblocking sockets, no dependency. Every
   connection upgrades with the RFC's own example key and checks the
   Sec-WebSocket-Accept it gets back; frames from the server are checked too
   (unmasked, whole text frames), pings are answered with pongs.

     ws_load PORT [-c CONNECTIONS] [-d SECONDS] [-s BYTES] [-p DEPTH] [-P PATH]
       echo: CONNECTIONS (64) WebSockets to ws://127.0.0.1:PORT/echo; each sends
       a masked text message of BYTES (32, at most 65535) and waits for its
       echo before sending the next, DEPTH (1) of them in flight, for SECONDS
       (5) timed from the last handshake. Every echo is compared byte for byte
       with what was sent (each message is different); after the time, the
       echoes still in flight are awaited (2 s) and checked, and every
       connection ends with the closing handshake (1000). Prints one line
       "BENCH {json}": messages echoed within the time, seconds, errors, lost.
     ws_load PORT -i COUNT [-P PATH]
       idle: COUNT WebSockets (500 handshakes at a time), then prints
       "ready OPEN"; each line read from stdin is answered "open N" (those
       the server has not closed); ends when stdin closes, with the closing
       handshakes.

   Exit status 0, or 1 when a handshake, an echo or a connection failed (the
   first failure is in the BENCH line and on stderr).

   cc -std=c99 -O2 -o ws_load bench/ws_load.c */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* RFC 6455 section 1.3's example: this key must be answered with this accept. */
#define KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
#define MAX_HANDSHAKING 500 /* connections between connect() and their 101 at once */
#define MAX_HEAD 4096       /* bytes of a 101 answer */
#define STDIN_TAG UINT32_MAX
#define DRAIN_SECONDS 2.0

enum { CONNECTING, UPGRADING, OPEN, DONE };

typedef struct conn {
    int fd, state;
    int want_write; /* EPOLLOUT armed */
    int closing;    /* our close frame is sent: the server's ends it */
    unsigned char *in, *out;
    size_t in_len, out_len;
    uint64_t sent, checked; /* messages sent, echoes checked */
} conn;

typedef struct load {
    int port, connections, size, depth, idle;
    double seconds;
    const char *path;
    size_t in_cap, out_cap;
    int ep;
    conn *conns;
    int started, handshaking, open; /* connections started, awaiting their 101, open */
    int sending;                    /* 1 in the timed window: each echo sends the next */
    int stdin_ready;
    uint64_t counted; /* echoes checked within the window */
    long errors;
    char first_error[256];
    unsigned char *expected; /* the message an echo is compared with */
    uint32_t rng;
} load;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void drop(load *l, conn *c) {
    if (c->state == DONE) return;
    if (c->state == OPEN) l->open--;
    else l->handshaking--;
    close(c->fd);
    c->state = DONE;
}

/* Counts an error, keeps the first one's text (quotes and control bytes
   replaced: it goes into a JSON string) and closes c, when given. */
static void fail(load *l, conn *c, const char *fmt, ...) {
    va_list ap;
    size_t i, at = 0;
    if (l->errors++ == 0) {
        if (c)
            at = (size_t)snprintf(l->first_error, sizeof l->first_error,
                                  "connection %d: ", (int)(c - l->conns));
        va_start(ap, fmt);
        vsnprintf(l->first_error + at, sizeof l->first_error - at, fmt, ap);
        va_end(ap);
        for (i = 0; l->first_error[i]; i++)
            if (l->first_error[i] == '"' || l->first_error[i] == '\\' ||
                (unsigned char)l->first_error[i] < 32)
                l->first_error[i] = '?';
    }
    if (c) drop(l, c);
}

/* Message seq of connection id: printable ASCII, different for each seq, so
   a lost, repeated or reordered echo does not compare equal. */
static void message(const load *l, int id, uint64_t seq, unsigned char *out) {
    int i;
    for (i = 0; i < l->size; i++)
        out[i] = (unsigned char)(33 + ((unsigned)id * 131u + (unsigned)seq * 17u + (unsigned)i * 7u) % 94u);
}

static uint32_t next_mask(load *l) { /* xorshift32 */
    l->rng ^= l->rng << 13;
    l->rng ^= l->rng >> 17;
    l->rng ^= l->rng << 5;
    return l->rng;
}

/* Appends a masked frame (FIN set) to c's output; -1 (and c failed) when it has no room. */
static int put_frame(load *l, conn *c, int opcode, const unsigned char *data, size_t len) {
    unsigned char *p = c->out + c->out_len;
    uint32_t mask = next_mask(l);
    unsigned char m[4];
    size_t i;
    if (c->out_len + len + 8 > l->out_cap) {
        fail(l, c, "output buffer full (the server does not read)");
        return -1;
    }
    m[0] = (unsigned char)(mask >> 24), m[1] = (unsigned char)(mask >> 16);
    m[2] = (unsigned char)(mask >> 8), m[3] = (unsigned char)mask;
    *p++ = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        *p++ = (unsigned char)(0x80 | len);
    } else {
        *p++ = 0x80 | 126;
        *p++ = (unsigned char)(len >> 8);
        *p++ = (unsigned char)len;
    }
    memcpy(p, m, 4);
    p += 4;
    for (i = 0; i < len; i++) p[i] = data[i] ^ m[i & 3];
    c->out_len = (size_t)(p + len - c->out);
    return 0;
}

static int send_message(load *l, conn *c) {
    message(l, (int)(c - l->conns), c->sent, l->expected);
    if (put_frame(l, c, 0x1, l->expected, (size_t)l->size) < 0) return -1;
    c->sent++;
    return 0;
}

static void want_write(load *l, conn *c, int want) {
    struct epoll_event ev;
    if (want == c->want_write) return;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN | (want ? EPOLLOUT : 0);
    ev.data.u32 = (uint32_t)(c - l->conns);
    epoll_ctl(l->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_write = want;
}

/* Writes what c has to send; what the kernel does not take waits for EPOLLOUT. */
static void flush(load *l, conn *c) {
    size_t done = 0;
    while (done < c->out_len) {
        ssize_t n = send(c->fd, c->out + done, c->out_len - done, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) break;
        if (n < 0) {
            fail(l, c, "send: %s", strerror(errno));
            return;
        }
        done += (size_t)n;
    }
    memmove(c->out, c->out + done, c->out_len - done);
    c->out_len -= done;
    want_write(l, c, c->out_len > 0);
}

/* 1 when head (ending in its blank line) is a 101 with the accept KEY asks for. */
static int upgraded(const unsigned char *head, size_t len) {
    static const char name[] = "\r\nsec-websocket-accept:";
    const char *h = (const char *)head;
    size_t i, n = sizeof name - 1;
    if (len < 13 || memcmp(h, "HTTP/1.1 101 ", 13) != 0) return 0;
    for (i = 0; i + n < len; i++) {
        if (strncasecmp(h + i, name, n) != 0) continue;
        i += n;
        while (i < len && (h[i] == ' ' || h[i] == '\t')) i++;
        return len - i >= sizeof ACCEPT - 1 + 2 && memcmp(h + i, ACCEPT, sizeof ACCEPT - 1) == 0 &&
               (h[i + sizeof ACCEPT - 1] == '\r' || h[i + sizeof ACCEPT - 1] == ' ');
    }
    return 0;
}

static void on_frame(load *l, conn *c, int b0, const unsigned char *data, size_t len) {
    int opcode = b0 & 0x0f;
    if (opcode == 0x9) { /* ping: the pong goes out with the next flush */
        put_frame(l, c, 0xA, data, len);
        return;
    }
    if (opcode == 0xA) return;
    if (opcode == 0x8 && c->closing) {
        drop(l, c);
        return;
    }
    if (opcode == 0x8) {
        fail(l, c, "the server closed with %d", len >= 2 ? data[0] << 8 | data[1] : 1005);
        return;
    }
    if (b0 != 0x81) {
        fail(l, c, "frame 0x%02x from the server, expected a whole text frame", b0);
        return;
    }
    if (c->checked == c->sent) {
        fail(l, c, "a message from the server with no echo due");
        return;
    }
    message(l, (int)(c - l->conns), c->checked, l->expected);
    if (len != (size_t)l->size || memcmp(data, l->expected, len) != 0) {
        fail(l, c, "echo %llu (%zu bytes) differs from the message sent", (unsigned long long)c->checked,
             len);
        return;
    }
    c->checked++;
    if (!l->sending) return;
    l->counted++;
    send_message(l, c);
}

/* The 101's head, then whole frames, taken from c's input. */
static void consume(load *l, conn *c) {
    size_t at = 0;
    if (c->state == UPGRADING) {
        const unsigned char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
        if (!end) return;
        at = (size_t)(end + 4 - c->in);
        if (!upgraded(c->in, at)) {
            c->in[c->in_len < 60 ? c->in_len : 60] = 0; /* in_cap is past MAX_HEAD */
            fail(l, c, "no 101 with the expected Sec-WebSocket-Accept: %s", (char *)c->in);
            return;
        }
        c->state = OPEN;
        l->handshaking--;
        l->open++;
    }
    while (c->state == OPEN && c->in_len - at >= 2) {
        const unsigned char *p = c->in + at;
        size_t head = 2, len = p[1] & 0x7f;
        if (p[1] & 0x80) {
            fail(l, c, "a masked frame from the server");
            return;
        }
        if (len == 127) {
            fail(l, c, "a frame over 64 KiB from the server");
            return;
        }
        if (len == 126) {
            if (c->in_len - at < 4) break;
            len = (size_t)p[2] << 8 | p[3];
            head = 4;
        }
        if (head + len > l->in_cap) {
            fail(l, c, "a frame of %zu bytes, over the input buffer", len);
            return;
        }
        if (c->in_len - at < head + len) break;
        on_frame(l, c, p[0], p + head, len);
        at += head + len;
    }
    if (c->state == DONE) return;
    memmove(c->in, c->in + at, c->in_len - at);
    c->in_len -= at;
}

static void on_readable(load *l, conn *c) {
    ssize_t n = read(c->fd, c->in + c->in_len, l->in_cap - c->in_len);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n < 0) {
        fail(l, c, "read: %s", strerror(errno));
        return;
    }
    if (n == 0 && c->closing) {
        drop(l, c);
        return;
    }
    if (n == 0) {
        fail(l, c, c->state == UPGRADING ? "closed before its 101" : "closed by the server");
        return;
    }
    c->in_len += (size_t)n;
    consume(l, c);
    if (c->state == DONE) return;
    if (c->in_len == l->in_cap) {
        fail(l, c, c->state == UPGRADING ? "a 101 head over %d bytes" : "input buffer full", MAX_HEAD);
        return;
    }
    if (c->out_len) flush(l, c);
}

static void on_connected(load *l, conn *c) {
    int err = 0, n;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
        fail(l, c, "connect: %s", strerror(err));
        return;
    }
    c->state = UPGRADING;
    n = snprintf((char *)c->out, l->out_cap,
                 "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n",
                 l->path, l->port);
    c->out_len = (size_t)n;
    flush(l, c);
}

static void on_event(load *l, conn *c, uint32_t events) {
    if (c->state == CONNECTING) {
        if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_connected(l, c);
        return;
    }
    if (c->state != DONE && (events & EPOLLOUT)) flush(l, c);
    if (c->state != DONE && (events & (EPOLLIN | EPOLLERR | EPOLLHUP))) on_readable(l, c);
}

/* Starts connections until MAX_HANDSHAKING await their 101. */
static void open_more(load *l) {
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)l->port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    while (l->started < l->connections && l->handshaking < MAX_HANDSHAKING) {
        conn *c = &l->conns[l->started];
        struct epoll_event ev;
        int one = 1;
        memset(&ev, 0, sizeof ev);
        ev.events = EPOLLIN | EPOLLOUT;
        ev.data.u32 = (uint32_t)l->started++;
        c->state = CONNECTING;
        c->want_write = 1;
        l->handshaking++;
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (c->fd < 0) {
            c->state = DONE;
            l->handshaking--;
            fail(l, NULL, "socket: %s", strerror(errno));
            continue;
        }
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) {
            fail(l, c, "connect: %s", strerror(errno));
            continue;
        }
        epoll_ctl(l->ep, EPOLL_CTL_ADD, c->fd, &ev);
    }
}

static void poll_once(load *l, int timeout_ms) {
    struct epoll_event ev[256];
    int n = epoll_wait(l->ep, ev, 256, timeout_ms), i;
    for (i = 0; i < n; i++) {
        if (ev[i].data.u32 == STDIN_TAG) l->stdin_ready = 1;
        else on_event(l, &l->conns[ev[i].data.u32], ev[i].events);
    }
}

/* Every connection started and past its handshake (open or failed); -1 after timeout seconds. */
static int connect_all(load *l, double timeout) {
    double deadline = now() + timeout;
    open_more(l);
    while (l->handshaking > 0 || l->started < l->connections) {
        if (now() > deadline) {
            fail(l, NULL, "%d handshakes not done after %.0f s", l->connections - l->open, timeout);
            return -1;
        }
        poll_once(l, 100);
        open_more(l);
    }
    return 0;
}

static uint64_t in_flight(const load *l) {
    uint64_t n = 0;
    int i;
    for (i = 0; i < l->connections; i++)
        if (l->conns[i].state == OPEN) n += l->conns[i].sent - l->conns[i].checked;
    return n;
}

/* The closing handshake on every open connection (1000), then up to timeout
   seconds for the servers' close frames: no server sees its clients vanish. */
static void close_all(load *l, double timeout) {
    static const unsigned char normal[2] = {0x03, 0xe8};
    double deadline = now() + timeout;
    int i;
    for (i = 0; i < l->connections; i++) {
        conn *c = &l->conns[i];
        if (c->state != OPEN || put_frame(l, c, 0x8, normal, 2) < 0) continue;
        c->closing = 1;
        flush(l, c);
    }
    while (l->open > 0 && now() < deadline) poll_once(l, 50);
}

static int run_echo(load *l) {
    double start, end, t, elapsed;
    uint64_t lost;
    int i, k, open;
    connect_all(l, 30.0);
    for (i = 0; i < l->connections; i++) {
        conn *c = &l->conns[i];
        for (k = 0; k < l->depth && c->state == OPEN; k++) send_message(l, c);
        if (c->state == OPEN) flush(l, c);
    }
    l->sending = 1;
    start = now();
    end = start + l->seconds;
    while ((t = now()) < end && l->open > 0) poll_once(l, (int)((end - t) * 1000) + 1);
    elapsed = now() - start;
    open = l->open;
    l->sending = 0;
    end = now() + DRAIN_SECONDS;
    while (in_flight(l) > 0 && l->open > 0 && now() < end) poll_once(l, 50);
    lost = in_flight(l);
    if (lost)
        fail(l, NULL, "%llu echoes not back %.0f s after the end", (unsigned long long)lost, DRAIN_SECONDS);
    close_all(l, DRAIN_SECONDS);
    if (elapsed <= 0) elapsed = 1e-9;
    printf("BENCH {\"connections\": %d, \"open\": %d, \"depth\": %d, \"size\": %d, \"messages\": %llu, "
           "\"seconds\": %.6f, \"rate\": %.1f, \"errors\": %ld, \"lost\": %llu, \"first_error\": \"%s\"}\n",
           l->connections, open, l->depth, l->size, (unsigned long long)l->counted, elapsed,
           l->counted / elapsed, l->errors, (unsigned long long)lost, l->first_error);
    fprintf(stderr,
            "ws_load: %d connections, %llu echoes in %.2f s: %.0f messages/s, each checked; errors %ld%s%s\n",
            open, (unsigned long long)l->counted, elapsed, l->counted / elapsed, l->errors,
            l->errors ? ", the first: " : "", l->first_error);
    return l->errors ? 1 : 0;
}

static int run_idle(load *l) {
    struct epoll_event ev;
    int held = 1;
    connect_all(l, 120.0);
    printf("ready %d\n", l->open);
    fflush(stdout);
    if (l->errors) fprintf(stderr, "ws_load: %ld errors, the first: %s\n", l->errors, l->first_error);
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.u32 = STDIN_TAG;
    if (epoll_ctl(l->ep, EPOLL_CTL_ADD, 0, &ev) < 0) held = 0; /* not pollable (a file): hold until killed */
    for (;;) {
        char buf[256];
        ssize_t n, i;
        poll_once(l, 1000);
        if (!l->stdin_ready) continue;
        l->stdin_ready = 0;
        n = held ? read(0, buf, sizeof buf) : 1;
        if (n <= 0) break;
        for (i = 0; i < n; i++)
            if (buf[i] == '\n') printf("open %d\n", l->open);
        fflush(stdout);
    }
    close_all(l, DRAIN_SECONDS);
    return l->errors ? 1 : 0;
}

/* Enough descriptors for count sockets (raising the hard limit needs root). */
static int raise_nofile(int count) {
    struct rlimit rl;
    rlim_t want = (rlim_t)count + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
    if (rl.rlim_cur >= want) return 0;
    if (rl.rlim_max < want) rl.rlim_max = want;
    rl.rlim_cur = want;
    return setrlimit(RLIMIT_NOFILE, &rl);
}

static int usage(void) {
    fprintf(stderr, "usage: ws_load PORT [-c CONNECTIONS] [-d SECONDS] [-s BYTES] [-p DEPTH] [-P PATH]\n"
                    "       ws_load PORT -i COUNT [-P PATH]\n");
    return 2;
}

int main(int argc, char **argv) {
    load l;
    int opt, i;
    memset(&l, 0, sizeof l);
    l.connections = 64, l.seconds = 5, l.size = 32, l.depth = 1, l.path = "/echo", l.rng = 0x9e3779b9u;
    if (argc < 2 || (l.port = atoi(argv[1])) <= 0 || l.port > 65535) return usage();
    optind = 2;
    while ((opt = getopt(argc, argv, "c:d:s:p:P:i:")) != -1) {
        switch (opt) {
        case 'c': l.connections = atoi(optarg); break;
        case 'd': l.seconds = atof(optarg); break;
        case 's': l.size = atoi(optarg); break;
        case 'p': l.depth = atoi(optarg); break;
        case 'P': l.path = optarg; break;
        case 'i':
            l.idle = 1;
            l.connections = atoi(optarg);
            break;
        default: return usage();
        }
    }
    if (l.connections < 1 || l.seconds <= 0 || l.size < 1 || l.size > 65535 || l.depth < 1 ||
        strlen(l.path) > 512)
        return usage();
    if (raise_nofile(l.connections) != 0) {
        fprintf(stderr, "ws_load: cannot raise RLIMIT_NOFILE to %d: %s\n", l.connections + 64,
                strerror(errno));
        return 1;
    }
    l.in_cap = MAX_HEAD + (size_t)l.depth * ((size_t)l.size + 4) + 256;
    l.out_cap = 1024 + (size_t)l.depth * ((size_t)l.size + 8) + 256;
    l.conns = (conn *)calloc((size_t)l.connections, sizeof *l.conns);
    l.expected = (unsigned char *)malloc((size_t)l.size);
    l.ep = epoll_create1(0);
    if (!l.conns || !l.expected || l.ep < 0) return 1;
    for (i = 0; i < l.connections; i++) {
        l.conns[i].in = (unsigned char *)malloc(l.in_cap + 1);
        l.conns[i].out = (unsigned char *)malloc(l.out_cap);
        if (!l.conns[i].in || !l.conns[i].out) return 1;
    }
    return l.idle ? run_idle(&l) : run_echo(&l);
}
