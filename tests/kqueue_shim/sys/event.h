/* A stand-in for BSD <sys/event.h> on Linux: the part of kqueue(2) that
   turbo's kqueue backend uses, implemented on epoll by ../kqueue.c, so that
   backend can be built and tested on Linux:

       cc -DTURBO_KQUEUE -Itests/kqueue_shim examples/hello.c \
          tests/kqueue_shim/kqueue.c -lpthread

   Supported: EVFILT_READ and EVFILT_WRITE on sockets and pipes; EV_ADD,
   EV_DELETE, EV_ENABLE, EV_DISABLE; EV_EOF (with the socket error in fflags)
   and EV_ERROR (a change that failed, errno in data) in results; udata;
   level-triggered delivery, one event per filter. Anything else (other
   filters, EV_ONESHOT, EV_CLEAR, EV_DISPATCH, EV_RECEIPT) fails with EINVAL,
   never silently. The constants and struct layout follow FreeBSD's. */
#ifndef TURBO_KQUEUE_SHIM_SYS_EVENT_H
#define TURBO_KQUEUE_SHIM_SYS_EVENT_H

#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

#define EVFILT_READ (-1)
#define EVFILT_WRITE (-2)

#define EV_ADD 0x0001
#define EV_DELETE 0x0002
#define EV_ENABLE 0x0004
#define EV_DISABLE 0x0008
#define EV_ONESHOT 0x0010
#define EV_CLEAR 0x0020
#define EV_RECEIPT 0x0040
#define EV_DISPATCH 0x0080
#define EV_ERROR 0x4000
#define EV_EOF 0x8000

struct kevent {
    uintptr_t ident; /* the file descriptor */
    short filter;    /* EVFILT_READ or EVFILT_WRITE */
    unsigned short flags;
    unsigned int fflags; /* with EV_EOF: the socket's pending error, if any */
    intptr_t data;       /* READ: bytes readable; with EV_ERROR: the errno */
    void *udata;
};

#define EV_SET(kevp, a, b, c, d, e, f)        \
    do {                                      \
        struct kevent *ev_set_ = (kevp);      \
        ev_set_->ident = (a);                 \
        ev_set_->filter = (short)(b);         \
        ev_set_->flags = (unsigned short)(c); \
        ev_set_->fflags = (d);                \
        ev_set_->data = (e);                  \
        ev_set_->udata = (f);                 \
    } while (0)

int kqueue(void);
int kevent(int kq, const struct kevent *changelist, int nchanges, struct kevent *eventlist, int nevents,
           const struct timespec *timeout);

#ifdef __cplusplus
}
#endif
#endif
