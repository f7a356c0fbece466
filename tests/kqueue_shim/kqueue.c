/* kqueue(2) on epoll, for testing turbo's kqueue backend on Linux; see
   sys/event.h for what is covered.

   A kqueue is an epoll instance plus, per file descriptor, the state of its
   two filters (registered, enabled, udata). epoll has one registration per
   descriptor, so its interest is the union of the enabled filters, and each
   epoll event is split back into one event per filter. kqueue forgets a
   descriptor's filters when it is closed; close() is not ours to hook, so a
   registration remembers the descriptor's (st_dev, st_ino) and a
   descriptor number that now names another file starts afresh. */
#define _GNU_SOURCE
#include "sys/event.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHIM_MAX_EVENTS 256

typedef struct shim_filter {
    int on, enabled;
    void *udata;
} shim_filter;

typedef struct shim_reg {
    int in_epoll; /* the descriptor is in the epoll set */
    dev_t dev;
    ino_t ino;
    shim_filter f[2]; /* [0] EVFILT_READ, [1] EVFILT_WRITE */
} shim_reg;

typedef struct shim_kq {
    pthread_mutex_t lock;
    shim_reg *regs; /* indexed by descriptor */
    size_t nregs;
} shim_kq;

/* Every kqueue, indexed by its epoll descriptor. */
static pthread_mutex_t shim_lock = PTHREAD_MUTEX_INITIALIZER;
static shim_kq **shim_kqs;
static size_t shim_nkqs;

static shim_kq *shim_find(int kq) {
    shim_kq *q = NULL;
    pthread_mutex_lock(&shim_lock);
    if (kq >= 0 && (size_t)kq < shim_nkqs) q = shim_kqs[kq];
    pthread_mutex_unlock(&shim_lock);
    return q;
}

int kqueue(void) {
    int fd = epoll_create1(0);
    shim_kq *q;
    if (fd < 0) return -1;
    if (!(q = (shim_kq *)calloc(1, sizeof *q))) goto nomem;
    pthread_mutex_init(&q->lock, NULL);
    pthread_mutex_lock(&shim_lock);
    if ((size_t)fd >= shim_nkqs) {
        size_t n = (size_t)fd * 2 + 16;
        shim_kq **grown = (shim_kq **)realloc(shim_kqs, n * sizeof *grown);
        if (!grown) {
            pthread_mutex_unlock(&shim_lock);
            free(q);
            goto nomem;
        }
        memset(grown + shim_nkqs, 0, (n - shim_nkqs) * sizeof *grown);
        shim_kqs = grown;
        shim_nkqs = n;
    }
    if (shim_kqs[fd]) { /* a kqueue closed earlier had this number: forget it */
        pthread_mutex_destroy(&shim_kqs[fd]->lock);
        free(shim_kqs[fd]->regs);
        free(shim_kqs[fd]);
    }
    shim_kqs[fd] = q;
    pthread_mutex_unlock(&shim_lock);
    return fd;
nomem:
    close(fd);
    errno = ENOMEM;
    return -1;
}

/* The registration of fd, grown into existence and reset if fd now names
   another file than the one registered. NULL with errno on failure. */
static shim_reg *shim_reg_of(shim_kq *q, int fd) {
    struct stat st;
    shim_reg *r;
    if (fd < 0 || fstat(fd, &st) != 0) {
        errno = EBADF;
        return NULL;
    }
    if ((size_t)fd >= q->nregs) {
        size_t n = (size_t)fd * 2 + 16;
        shim_reg *grown = (shim_reg *)realloc(q->regs, n * sizeof *grown);
        if (!grown) {
            errno = ENOMEM;
            return NULL;
        }
        memset(grown + q->nregs, 0, (n - q->nregs) * sizeof *grown);
        q->regs = grown;
        q->nregs = n;
    }
    r = &q->regs[fd];
    if ((r->f[0].on || r->f[1].on || r->in_epoll) && (r->dev != st.st_dev || r->ino != st.st_ino))
        memset(r, 0, sizeof *r); /* closed and reused: epoll dropped it too */
    r->dev = st.st_dev;
    r->ino = st.st_ino;
    return r;
}

/* Makes the epoll interest of fd match its enabled filters. */
static int shim_sync(int epfd, int fd, shim_reg *r) {
    struct epoll_event ev;
    int want = (r->f[0].on && r->f[0].enabled) || (r->f[1].on && r->f[1].enabled);
    memset(&ev, 0, sizeof ev);
    ev.data.fd = fd;
    if (r->f[0].on && r->f[0].enabled) ev.events |= EPOLLIN | EPOLLRDHUP;
    if (r->f[1].on && r->f[1].enabled) ev.events |= EPOLLOUT;
    if (!want) {
        if (r->in_epoll && epoll_ctl(epfd, EPOLL_CTL_DEL, fd, &ev) != 0 && errno != ENOENT) return -1;
        r->in_epoll = 0;
        return 0;
    }
    if (epoll_ctl(epfd, r->in_epoll ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev) != 0) {
        /* our view and the kernel's can differ after a close: try the other */
        if (errno != ENOENT && errno != EEXIST) return -1;
        if (epoll_ctl(epfd, errno == ENOENT ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev) != 0) return -1;
    }
    r->in_epoll = 1;
    return 0;
}

/* Applies one change; 0 or an errno value. */
static int shim_apply(int epfd, shim_kq *q, const struct kevent *kev) {
    const unsigned short known = EV_ADD | EV_DELETE | EV_ENABLE | EV_DISABLE;
    shim_reg *r;
    shim_filter *f, saved;
    int i;
    if (kev->filter != EVFILT_READ && kev->filter != EVFILT_WRITE) return EINVAL;
    if (kev->flags & ~known) return EINVAL;
    if (kev->ident > (uintptr_t)0x7fffffff) return EBADF;
    if (!(r = shim_reg_of(q, (int)kev->ident))) return errno;
    i = kev->filter == EVFILT_READ ? 0 : 1;
    f = &r->f[i];
    saved = *f;
    if (kev->flags & EV_ADD) {
        f->on = 1;
        f->udata = kev->udata;
        if (!saved.on) f->enabled = 1;
    } else if (!f->on) {
        return ENOENT;
    }
    if (kev->flags & EV_ENABLE) f->enabled = 1;
    if (kev->flags & EV_DISABLE) f->enabled = 0;
    if (kev->flags & EV_DELETE) f->on = f->enabled = 0;
    if (shim_sync(epfd, (int)kev->ident, r) != 0) {
        int err = errno;
        *f = saved;
        return err;
    }
    return 0;
}

static int shim_timeout_ms(const struct timespec *ts) {
    long long ms;
    if (!ts) return -1;
    ms = (long long)ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000;
    return ms > 0x7fffffff ? 0x7fffffff : ms < 0 ? 0 : (int)ms;
}

/* One epoll event as up to two kevents; returns how many were written. */
static int shim_split(shim_kq *q, const struct epoll_event *e, struct kevent *out, int room) {
    int fd = e->data.fd, n = 0, i, err = 0;
    uint32_t ev = e->events;
    shim_reg *r;
    if (fd < 0 || (size_t)fd >= q->nregs) return 0;
    r = &q->regs[fd];
    if (ev & EPOLLERR) {
        socklen_t len = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = 0;
    }
    for (i = 0; i < 2 && n < room; i++) {
        uint32_t wakes = i == 0 ? EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR : EPOLLOUT | EPOLLHUP | EPOLLERR;
        uint32_t eof = i == 0 ? EPOLLRDHUP | EPOLLHUP | EPOLLERR : EPOLLHUP | EPOLLERR;
        struct kevent *k = &out[n];
        int readable = 0;
        if (!r->f[i].on || !r->f[i].enabled || !(ev & wakes)) continue;
        memset(k, 0, sizeof *k);
        k->ident = (uintptr_t)fd;
        k->filter = i == 0 ? EVFILT_READ : EVFILT_WRITE;
        k->flags = ev & eof ? EV_EOF : 0;
        k->fflags = ev & eof ? (unsigned)err : 0;
        if (i == 0 && ioctl(fd, FIONREAD, &readable) == 0) k->data = readable;
        k->udata = r->f[i].udata;
        n++;
    }
    return n;
}

int kevent(int kq, const struct kevent *changelist, int nchanges, struct kevent *eventlist, int nevents,
           const struct timespec *timeout) {
    struct epoll_event evs[SHIM_MAX_EVENTS];
    shim_kq *q = shim_find(kq);
    int i, n = 0, got;
    if (!q) {
        errno = EBADF;
        return -1;
    }
    if (nchanges < 0 || nevents < 0 || (nchanges && !changelist) || (nevents && !eventlist)) {
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&q->lock);
    for (i = 0; i < nchanges; i++) {
        int err = shim_apply(kq, q, &changelist[i]);
        if (!err) continue;
        if (n == nevents) { /* no room to report it: the call fails */
            pthread_mutex_unlock(&q->lock);
            errno = err;
            return -1;
        }
        eventlist[n] = changelist[i];
        eventlist[n].flags = EV_ERROR;
        eventlist[n].data = err;
        n++;
    }
    pthread_mutex_unlock(&q->lock);
    if (n || !nevents) return n; /* failed changes are returned at once */
    got =
        epoll_wait(kq, evs, nevents < SHIM_MAX_EVENTS ? nevents : SHIM_MAX_EVENTS, shim_timeout_ms(timeout));
    if (got < 0) return -1;
    pthread_mutex_lock(&q->lock);
    /* Level-triggered: a filter left out for want of room fires next time. */
    for (i = 0; i < got && n < nevents; i++) n += shim_split(q, &evs[i], eventlist + n, nevents - n);
    pthread_mutex_unlock(&q->lock);
    return n;
}
