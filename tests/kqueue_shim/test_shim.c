/* The kqueue shim's own tests: the semantics turbo's kqueue backend relies
   on, as kqueue(2) documents them.

   cc -Itests/kqueue_shim tests/kqueue_shim/test_shim.c tests/kqueue_shim/kqueue.c -lpthread */
#define _GNU_SOURCE
#include <sys/event.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int passed, failed;

#define CHECK(cond, ...)                                \
    do {                                                \
        if (cond) passed++;                             \
        else {                                          \
            failed++;                                   \
            printf("FAIL %s:%d: ", __FILE__, __LINE__); \
            printf(__VA_ARGS__);                        \
            printf("\n");                               \
        }                                               \
    } while (0)

static char tag_a, tag_b;
static const struct timespec now = {0, 0};

static int change(int kq, int fd, int filter, int flags, void *udata) {
    struct kevent ch;
    EV_SET(&ch, fd, filter, flags, 0, 0, udata);
    return kevent(kq, &ch, 1, NULL, 0, NULL);
}

static int poll_events(int kq, struct kevent *out, int n) { return kevent(kq, NULL, 0, out, n, &now); }

static const struct kevent *find(const struct kevent *ev, int n, int filter) {
    int i;
    for (i = 0; i < n; i++)
        if (ev[i].filter == filter) return &ev[i];
    return NULL;
}

static void test_read_write_filters(void) {
    int kq = kqueue(), sv[2], n;
    struct kevent ev[4];
    const struct kevent *r, *w;
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    CHECK(kq >= 0, "kqueue() = %d", kq);
    CHECK(change(kq, sv[0], EVFILT_READ, EV_ADD, &tag_a) == 0, "EV_ADD read");
    CHECK(poll_events(kq, ev, 4) == 0, "nothing to read yet");
    CHECK(write(sv[1], "hello", 5) == 5, "write");
    n = poll_events(kq, ev, 4);
    r = find(ev, n, EVFILT_READ);
    CHECK(n == 1 && r && r->udata == &tag_a && r->data == 5 && (int)r->ident == sv[0] && !(r->flags & EV_EOF),
          "one read event with udata and 5 bytes (n=%d)", n);
    CHECK(poll_events(kq, ev, 4) == 1, "level-triggered: reported again while unread");
    CHECK(change(kq, sv[0], EVFILT_READ, EV_DISABLE, NULL) == 0 && poll_events(kq, ev, 4) == 0,
          "EV_DISABLE silences the filter");
    CHECK(change(kq, sv[0], EVFILT_READ, EV_ENABLE, NULL) == 0 && poll_events(kq, ev, 4) == 1 &&
              ev[0].udata == &tag_a,
          "EV_ENABLE restores it, udata kept");
    CHECK(change(kq, sv[0], EVFILT_WRITE, EV_ADD, &tag_b) == 0, "EV_ADD write");
    n = poll_events(kq, ev, 4);
    r = find(ev, n, EVFILT_READ);
    w = find(ev, n, EVFILT_WRITE);
    CHECK(n == 2 && r && w && r->udata == &tag_a && w->udata == &tag_b,
          "one event per filter, each with its udata (n=%d)", n);
    CHECK(poll_events(kq, ev, 1) == 1, "a full event list holds what fits");
    CHECK(change(kq, sv[0], EVFILT_READ, EV_DELETE, NULL) == 0, "EV_DELETE read");
    n = poll_events(kq, ev, 4);
    CHECK(n == 1 && ev[0].filter == EVFILT_WRITE, "only the write filter is left (n=%d)", n);
    CHECK(change(kq, sv[0], EVFILT_WRITE, EV_ADD | EV_DISABLE, &tag_a) == 0 && poll_events(kq, ev, 4) == 0,
          "EV_ADD|EV_DISABLE registers disabled");
    close(sv[0]);
    close(sv[1]);
    close(kq);
}

static void test_errors(void) {
    int kq = kqueue(), sv[2], n;
    struct kevent ch[2], ev[4];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    errno = 0;
    CHECK(change(kq, sv[0], EVFILT_READ, EV_DELETE, NULL) == -1 && errno == ENOENT,
          "EV_DELETE of an unregistered filter without room: -1 ENOENT (errno %d)", errno);
    EV_SET(&ch[0], sv[0], EVFILT_READ, EV_DELETE, 0, 0, &tag_a);
    EV_SET(&ch[1], sv[0], EVFILT_WRITE, EV_ADD, 0, 0, &tag_b);
    n = kevent(kq, ch, 2, ev, 4, &now);
    CHECK(n == 1 && (ev[0].flags & EV_ERROR) && ev[0].data == ENOENT && ev[0].udata == &tag_a,
          "with room: an EV_ERROR event carrying ENOENT (n=%d)", n);
    n = poll_events(kq, ev, 4);
    CHECK(n == 1 && ev[0].filter == EVFILT_WRITE, "the change after the failed one still applied");
    errno = 0;
    CHECK(change(kq, 9999, EVFILT_READ, EV_ADD, NULL) == -1 && errno == EBADF, "bad descriptor: EBADF");
    CHECK(change(kq, sv[0], -4 /* EVFILT_AIO */, EV_ADD, NULL) == -1 && errno == EINVAL,
          "another filter: EINVAL");
    CHECK(change(kq, sv[0], EVFILT_READ, EV_ADD | EV_ONESHOT, NULL) == -1 && errno == EINVAL,
          "EV_ONESHOT is not supported: EINVAL, not ignored");
    errno = 0;
    CHECK(kevent(kq + 1000, NULL, 0, ev, 4, &now) == -1 && errno == EBADF, "not a kqueue: EBADF");
    close(sv[0]);
    close(sv[1]);
    close(kq);
}

static void test_eof(void) {
    int kq = kqueue(), sv[2], n;
    struct kevent ev[4];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    change(kq, sv[0], EVFILT_READ, EV_ADD, &tag_a);
    shutdown(sv[1], SHUT_WR);
    n = poll_events(kq, ev, 4);
    CHECK(n == 1 && (ev[0].flags & EV_EOF), "peer's shutdown: read event with EV_EOF (n=%d)", n);
    close(sv[1]);
    change(kq, sv[0], EVFILT_WRITE, EV_ADD, &tag_b);
    n = poll_events(kq, ev, 4);
    CHECK(n == 2 && find(ev, n, EVFILT_WRITE) && (find(ev, n, EVFILT_WRITE)->flags & EV_EOF),
          "peer gone: write event with EV_EOF (n=%d)", n);
    close(sv[0]);
    close(kq);
}

/* kqueue drops a descriptor's filters when it is closed; a new descriptor
   with the same number starts with none. */
static void test_descriptor_reuse(void) {
    int kq = kqueue(), sv[2], again[2];
    struct kevent ev[4];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    change(kq, sv[0], EVFILT_WRITE, EV_ADD, &tag_b);
    CHECK(poll_events(kq, ev, 4) == 1, "writable");
    close(sv[0]);
    close(sv[1]);
    CHECK(poll_events(kq, ev, 4) == 0, "a closed descriptor reports nothing");
    socketpair(AF_UNIX, SOCK_STREAM, 0, again);
    CHECK(again[0] == sv[0], "the number is reused (%d, %d)", again[0], sv[0]);
    CHECK(change(kq, again[0], EVFILT_READ, EV_ADD, &tag_a) == 0, "EV_ADD read on the new one");
    CHECK(poll_events(kq, ev, 4) == 0, "no write filter inherited from the closed descriptor");
    errno = 0;
    CHECK(change(kq, again[0], EVFILT_WRITE, EV_DELETE, NULL) == -1 && errno == ENOENT,
          "its write filter does not exist");
    close(again[0]);
    close(again[1]);
    close(kq);
}

static void test_timeout(void) {
    int kq = kqueue();
    struct kevent ev[1];
    struct timespec ts = {0, 50 * 1000000};
    struct timespec t0, t1;
    double waited;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(kevent(kq, NULL, 0, ev, 1, &ts) == 0, "times out with no events");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CHECK(waited >= 0.045 && waited < 1.0, "waited %.3fs for a 50 ms timeout", waited);
    close(kq);
}

/* test_shim [-k WORD...]: with -k, only the tests whose name has one of the words. */
int main(int argc, char **argv) {
    static const struct {
        const char *name;
        void (*run)(void);
    } tests[] = {{"read_write_filters", test_read_write_filters},
                 {"errors", test_errors},
                 {"eof", test_eof},
                 {"descriptor_reuse", test_descriptor_reuse},
                 {"timeout", test_timeout}};
    int first_word = argc > 1 && strcmp(argv[1], "-k") == 0 ? 2 : argc;
    size_t i;
    int k;
    for (i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        int chosen = first_word == argc;
        for (k = first_word; k < argc && !chosen; k++) chosen = strstr(tests[i].name, argv[k]) != NULL;
        if (chosen) tests[i].run();
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
