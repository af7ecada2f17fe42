// The floor of a 4-rank all-to-all over loopback TCP on this host: what a design that sends one
// message per peer per call pays in the kernel, with no library above the sockets (no headers,
// no flow control, no checks). Four processes, one socket per pair, TCP_NODELAY; each call
// copies the rank's own block, sends a block to each peer, then reads until every peer's block
// is in, polling with epoll_wait and yielding when nothing arrived (as HFReduce does when ranks
// outnumber cores). Prints the slowest rank's time per call and the busbw nccl-tests would.
//
//   cc -O2 -o /tmp/a2a_floor Benchmarks/loopback/a2a_floor.c
//   /tmp/a2a_floor 16384 5000        # 16 KiB per peer: the 64 KiB all-to-all of hfr-bench
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define N 4

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void die(const char* what) {
    perror(what);
    exit(1);
}

// One rank: `iters` timed calls after 100 warm-up calls; returns microseconds per call.
static double run_rank(int r, int fd[N][N], size_t blk, int iters) {
    int one = 1, ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1");
    for (int p = 0; p < N; p++) {
        if (p == r) continue;
        setsockopt(fd[r][p], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(fd[r][p], F_SETFL, O_NONBLOCK);
        struct epoll_event e = {.events = EPOLLIN, .data.u32 = (unsigned)p};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd[r][p], &e) < 0) die("epoll_ctl");
    }
    char* sb = aligned_alloc(64, blk * N);
    char* rb = aligned_alloc(64, blk * N);
    if (!sb || !rb) die("aligned_alloc");
    memset(sb, r, blk * N);
    double t0 = 0;
    for (int it = -100; it < iters; it++) {
        if (it == 0) t0 = now();
        memcpy(rb + r * blk, sb + r * blk, blk);
        for (int k = 1; k < N; k++) {
            int p = (r + k) % N;
            for (size_t o = 0; o < blk;) {
                ssize_t n = send(fd[r][p], sb + p * blk + o, blk - o, MSG_DONTWAIT);
                if (n > 0) o += (size_t)n; else sched_yield();
            }
        }
        size_t got[N] = {0};
        int left = N - 1;
        while (left > 0) {
            struct epoll_event ev[8];
            int n = epoll_wait(ep, ev, 8, 0);
            for (int k = 0; k < n; k++) {
                int p = (int)ev[k].data.u32;
                ssize_t m = recv(fd[r][p], rb + p * blk + got[p], blk - got[p], MSG_DONTWAIT);
                if (m > 0 && (got[p] += (size_t)m) == blk) left--;
            }
            if (n == 0) sched_yield();
        }
    }
    return (now() - t0) / iters * 1e6;
}

int main(int argc, char** argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s BYTES_PER_PEER ITERATIONS\n", argv[0]);
        return 2;
    }
    size_t blk = strtoul(argv[1], 0, 10);
    int iters = atoi(argv[2]);
    int lfd[N];
    struct sockaddr_in addr[N];
    for (int r = 0; r < N; r++) {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t l = sizeof a;
        lfd[r] = socket(AF_INET, SOCK_STREAM, 0);
        if (lfd[r] < 0 || bind(lfd[r], (void*)&a, sizeof a) < 0 || listen(lfd[r], 16) < 0) die("listen");
        getsockname(lfd[r], (void*)&a, &l);
        addr[r] = a;
    }
    int fd[N][N];  // fd[i][j]: rank i's socket to rank j
    for (int i = 0; i < N; i++) {
        for (int j = i + 1; j < N; j++) {
            int c = socket(AF_INET, SOCK_STREAM, 0);
            if (c < 0 || connect(c, (void*)&addr[j], sizeof addr[j]) < 0) die("connect");
            int s = accept(lfd[j], 0, 0);
            if (s < 0) die("accept");
            fd[i][j] = c;
            fd[j][i] = s;
        }
    }
    int pipes[N][2];
    for (int r = 0; r < N; r++) {
        if (pipe(pipes[r]) < 0) die("pipe");
        if (fork() == 0) {
            char msg[64];
            int l = snprintf(msg, sizeof msg, "%f\n", run_rank(r, fd, blk, iters));
            if (write(pipes[r][1], msg, (size_t)l) != l) _exit(1);
            _exit(0);
        }
    }
    double slowest = 0;
    for (int r = 0; r < N; r++) {
        char b[64] = {0};
        if (read(pipes[r][0], b, sizeof b - 1) <= 0) die("read");
        double v = atof(b);
        if (v > slowest) slowest = v;
    }
    for (int r = 0; r < N; r++) wait(0);
    double size = (double)blk * N;
    printf("block %zu: %.1f us per call, busbw %.3f GB/s\n", blk, slowest, size / (slowest * 1e-6) / 1e9 * (N - 1) / N);
    return 0;
}
