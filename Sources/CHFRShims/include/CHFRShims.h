#ifndef CHFRSHIMS_H
#define CHFRSHIMS_H
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/uio.h>

/// epoll_ctl(2) with the event's data set to a 64-bit token (struct epoll_event is packed, which Swift cannot import cleanly).
int hfr_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t token);
/// epoll_wait(2) that unpacks the events into parallel arrays of tokens and event masks.
int hfr_epoll_wait(int epfd, uint64_t *tokens, uint32_t *events, int maxevents, int timeout_ms);
/// sendmsg(2) of up to two buffers (header and payload) with MSG_NOSIGNAL | MSG_DONTWAIT.
ssize_t hfr_send2(int fd, const void *a, size_t alen, const void *b, size_t blen);
/// sendmsg(2) of `n` iovecs with MSG_NOSIGNAL | MSG_DONTWAIT.
ssize_t hfr_sendv(int fd, const struct iovec *iov, int n);
/// recv(2) with MSG_DONTWAIT.
ssize_t hfr_recv(int fd, void *buf, size_t len);
/// recvmsg(2) into up to two buffers (the rest of a payload, then read-ahead space) with MSG_DONTWAIT.
ssize_t hfr_recv2(int fd, void *a, size_t alen, void *b, size_t blen);
/// The calling thread's errno.
int hfr_errno(void);
/// gettid(2).
int hfr_gettid(void);
/// accept4(2) with SOCK_NONBLOCK | SOCK_CLOEXEC.
int hfr_accept(int fd);
/// pthread_setname_np(3) on the calling thread.
void hfr_set_thread_name(const char *name);
#endif
