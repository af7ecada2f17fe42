#define _GNU_SOURCE
#include "CHFRShims.h"
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <sys/syscall.h>

int hfr_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t token) {
    struct epoll_event ev;
    ev.events = events;
    ev.data.u64 = token;
    return epoll_ctl(epfd, op, fd, &ev);
}

int hfr_epoll_wait(int epfd, uint64_t *tokens, uint32_t *events, int maxevents, int timeout_ms) {
    struct epoll_event evs[64];
    if (maxevents > 64) maxevents = 64;
    int n = epoll_wait(epfd, evs, maxevents, timeout_ms);
    for (int i = 0; i < n; i++) {
        tokens[i] = evs[i].data.u64;
        events[i] = evs[i].events;
    }
    return n;
}

/* Points `msg` at the non-empty ones of two buffers, in order. */
static void two_buffers(struct msghdr *msg, struct iovec iov[2], void *a, size_t alen, void *b, size_t blen) {
    int n = 0;
    if (alen) { iov[n].iov_base = a; iov[n].iov_len = alen; n++; }
    if (blen) { iov[n].iov_base = b; iov[n].iov_len = blen; n++; }
    memset(msg, 0, sizeof *msg);
    msg->msg_iov = iov;
    msg->msg_iovlen = (size_t)n;
}

ssize_t hfr_send2(int fd, const void *a, size_t alen, const void *b, size_t blen) {
    struct iovec iov[2];
    struct msghdr msg;
    two_buffers(&msg, iov, (void *)a, alen, (void *)b, blen);
    return sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
}

ssize_t hfr_sendv(int fd, const struct iovec *iov, int n) {
    struct msghdr msg = {0};
    msg.msg_iov = (struct iovec *)iov;
    msg.msg_iovlen = (size_t)n;
    return sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
}

ssize_t hfr_recv(int fd, void *buf, size_t len) {
    return recv(fd, buf, len, MSG_DONTWAIT);
}

ssize_t hfr_recv2(int fd, void *a, size_t alen, void *b, size_t blen) {
    struct iovec iov[2];
    struct msghdr msg;
    two_buffers(&msg, iov, a, alen, b, blen);
    return recvmsg(fd, &msg, MSG_DONTWAIT);
}

int hfr_errno(void) { return errno; }
int hfr_gettid(void) { return (int)syscall(SYS_gettid); }

#include <pthread.h>
int hfr_accept(int fd) { return accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC); }
void hfr_set_thread_name(const char *name) { pthread_setname_np(pthread_self(), name); }
