/* floor.c - the "parse-nothing" reference server for bench/.

   The least work an HTTP server can do and still answer wrk: one thread, one
   epoll loop, nonblocking sockets. It reads whatever arrives, counts the
   "\r\n\r\n" that end request heads, and answers each with the same canned
   plaintext response, all of a read's responses in one write. No parsing, no
   routing, no bodies, no timers. Its CPU time per request is the floor every
   real server is measured against; it is not a server to use.

   A write the kernel does not take whole closes the connection: with wrk's
   small requests it does not happen, and buffering it would be work a floor
   should not do.

   cc -O2 -o floor bench/floor.c
   ./floor PORT          (0 = any free port; the port is printed on stderr) */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

/* Same shape and size as a real server's answer, Date included. */
static const char canned[] = "HTTP/1.1 200 OK\r\n"
                             "Server: floor\r\n"
                             "Date: Thu, 01 Jan 2026 00:00:00 GMT\r\n"
                             "Content-Type: text/plain\r\n"
                             "Content-Length: 13\r\n"
                             "\r\n"
                             "Hello, World!";
#define CANNED_LEN (sizeof canned - 1)
#define READ_SIZE 16384
/* Every 4 bytes read can end at most one request head. */
#define OUT_SIZE ((READ_SIZE / 4 + 1) * CANNED_LEN)

static volatile sig_atomic_t stopping;

static void on_signal(int sig) {
    (void)sig;
    stopping = 1;
}

static int listen_on(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    struct sockaddr_in addr;
    socklen_t len = sizeof addr;
    if (fd < 0) return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons((unsigned short)port);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, 4096) < 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) < 0) {
        close(fd);
        return -1;
    }
    fprintf(stderr, "floor: listening on http://127.0.0.1:%d\n", ntohs(addr.sin_port));
    return fd;
}

static void accept_all(int lfd, int ep) {
    for (;;) {
        int one = 1;
        struct epoll_event ev;
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
        if (fd < 0) return; /* EAGAIN: the backlog is empty */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) close(fd);
    }
}

/* matched[fd] is how much of "\r\n\r\n" the previous read ended with, so a
   head split across reads is still counted once. */
static void serve(int fd, unsigned char *matched, char *in, char *out) {
    static const char end[4] = {'\r', '\n', '\r', '\n'};
    ssize_t n = read(fd, in, READ_SIZE);
    size_t out_len = 0;
    unsigned m = matched[fd];
    ssize_t i;
    if (n <= 0) {
        if (n < 0 && errno == EAGAIN) return;
        matched[fd] = 0;
        close(fd);
        return;
    }
    for (i = 0; i < n; i++) {
        if (in[i] == end[m]) {
            if (++m == 4) {
                memcpy(out + out_len, canned, CANNED_LEN);
                out_len += CANNED_LEN;
                m = 0;
            }
        } else {
            m = in[i] == '\r';
        }
    }
    matched[fd] = (unsigned char)m;
    if (out_len > 0 && write(fd, out, out_len) != (ssize_t)out_len) {
        matched[fd] = 0;
        close(fd);
    }
}

int main(int argc, char **argv) {
    struct rlimit lim;
    struct epoll_event events[256];
    unsigned char *matched;
    char *in, *out;
    int lfd, ep;
    struct sigaction sa;
    sigset_t stop_signals, wait_mask;

    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    /* SIGINT and SIGTERM stay blocked except inside epoll_pwait, so a stop
       request cannot slip in between the check of `stopping` and the wait. */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop_signals, &wait_mask);

    if (getrlimit(RLIMIT_NOFILE, &lim) < 0) return 1;
    matched = (unsigned char *)calloc(lim.rlim_cur, 1);
    in = (char *)malloc(READ_SIZE);
    out = (char *)malloc(OUT_SIZE);
    lfd = listen_on(atoi(argv[1]));
    ep = epoll_create1(0);
    if (!matched || !in || !out || lfd < 0 || ep < 0) {
        perror("floor");
        return 1;
    }
    {
        struct epoll_event ev;
        ev.events = EPOLLIN;
        ev.data.fd = lfd;
        epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    }
    while (!stopping) {
        int i, n = epoll_pwait(ep, events, 256, -1, &wait_mask);
        for (i = 0; i < n; i++) {
            if (events[i].data.fd == lfd) accept_all(lfd, ep);
            else serve(events[i].data.fd, matched, in, out);
        }
    }
    free(matched);
    free(in);
    free(out);
    return 0;
}
