// The floor of a 4-rank all-to-all over loopback TCP on this host: what a design that sends one
// message per peer per call pays in the kernel, with no library above the sockets (no headers,
// no flow control, no checks). Four processes, one socket per pair, TCP_NODELAY; each call
// copies the rank's own block, sends a block to each peer, then reads until every peer's block
// is in, polling with epoll_wait and yielding when nothing arrived (as HFReduce does when ranks
// outnumber cores). Prints the slowest rank's time per call and the busbw nccl-tests would.
//
// `bruck` runs Bruck's algorithm instead, fewer and larger messages: in step k (k = 0, 1) a rank
// sends the blocks whose rotated index has bit k set to rank+2^k in one message and receives as
// many from rank-2^k; each rank sends 2 messages of 2 blocks instead of 3 of 1, and relays one
// block. Its blocks go out and come in through iovecs, with no copy; `bruck-packed` copies them
// into and out of one contiguous message per step, as a library whose messages are contiguous
// buffers would.
//
//   cc -O2 -o /tmp/a2a_floor Benchmarks/loopback/a2a_floor.c
//   /tmp/a2a_floor 16384 5000        # 16 KiB per peer: the 64 KiB all-to-all of hfr-bench
//   /tmp/a2a_floor 16384 5000 bruck
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
#include <sys/uio.h>
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

enum algorithm { DIRECT, BRUCK, BRUCK_PACKED };

// Moves `total` bytes of the iovecs `v` from `done` on, with one sendmsg or recvmsg.
static ssize_t move(int fd, const struct iovec* v, int count, size_t done, int sending) {
    struct iovec rest[2];
    int c = 0;
    for (int i = 0; i < count; i++) {
        if (done >= v[i].iov_len) { done -= v[i].iov_len; continue; }
        rest[c++] = (struct iovec){(char*)v[i].iov_base + done, v[i].iov_len - done};
        done = 0;
    }
    struct msghdr m = {.msg_iov = rest, .msg_iovlen = (size_t)c};
    return sending ? sendmsg(fd, &m, MSG_DONTWAIT) : recvmsg(fd, &m, MSG_DONTWAIT);
}

// One Bruck call for N = 4 (blocks: `sb`/`rb` hold N; `relay` one block; `pack` 4 blocks).
static void bruck_call(int r, int fd[N][N], size_t blk, char* sb, char* rb, char* relay, char* pack, int packed) {
    memcpy(rb + r * blk, sb + r * blk, blk);
    for (int step = 0; step < 2; step++) {
        int to = (r + (1 << step)) % N, from = (r - (1 << step) + N) % N;
        // Rotated index i is the block for rank r+i; step 0 moves i = 1, 3 and step 1 i = 2, 3,
        // where block 3 is the one rank r-1 relayed in step 0.
        struct iovec out[2], in[2];
        if (step == 0) {
            out[0] = (struct iovec){sb + ((r + 1) % N) * blk, blk};
            out[1] = (struct iovec){sb + ((r + 3) % N) * blk, blk};
            in[0] = (struct iovec){rb + ((r + 3) % N) * blk, blk};
            in[1] = (struct iovec){relay, blk};
        } else {
            out[0] = (struct iovec){sb + ((r + 2) % N) * blk, blk};
            out[1] = (struct iovec){relay, blk};
            in[0] = (struct iovec){rb + ((r + 2) % N) * blk, blk};
            in[1] = (struct iovec){rb + ((r + 1) % N) * blk, blk};
        }
        struct iovec wire_out[2] = {out[0], out[1]}, wire_in[2] = {in[0], in[1]};
        if (packed) {
            memcpy(pack, out[0].iov_base, blk);
            memcpy(pack + blk, out[1].iov_base, blk);
            wire_out[0] = (struct iovec){pack, 2 * blk};
            wire_in[0] = (struct iovec){pack + 2 * blk, 2 * blk};
        }
        int count = packed ? 1 : 2;
        size_t sent = 0, got = 0, total = 2 * blk;
        while (sent < total || got < total) {
            int moved = 0;
            ssize_t n;
            if (sent < total && (n = move(fd[r][to], wire_out, count, sent, 1)) > 0) { sent += (size_t)n; moved = 1; }
            if (got < total && (n = move(fd[r][from], wire_in, count, got, 0)) > 0) { got += (size_t)n; moved = 1; }
            if (!moved) sched_yield();
        }
        if (packed) {
            memcpy(in[0].iov_base, pack + 2 * blk, blk);
            memcpy(in[1].iov_base, pack + 3 * blk, blk);
        }
    }
}

// One rank: `iters` timed calls after 100 warm-up calls; returns microseconds per call.
static double run_rank(int r, int fd[N][N], size_t blk, int iters, enum algorithm algo) {
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
    char* relay = aligned_alloc(64, blk);
    char* pack = aligned_alloc(64, blk * 4);
    if (!sb || !rb || !relay || !pack) die("aligned_alloc");
    // Block p of rank r's send buffer holds r * N + p: where each block lands is checked below.
    for (int p = 0; p < N; p++) memset(sb + p * blk, r * N + p, blk);
    double t0 = 0;
    for (int it = -100; it < iters; it++) {
        if (it == 0) t0 = now();
        if (algo != DIRECT) {
            bruck_call(r, fd, blk, sb, rb, relay, pack, algo == BRUCK_PACKED);
            continue;
        }
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
    double elapsed = now() - t0;
    for (int p = 0; p < N; p++) {
        for (size_t k = 0; k < blk; k++) {
            if ((unsigned char)rb[p * blk + k] != (unsigned char)(p * N + r)) {
                fprintf(stderr, "rank %d: byte %zu of the block from rank %d is wrong\n", r, k, p);
                exit(1);
            }
        }
    }
    return elapsed / iters * 1e6;
}

int main(int argc, char** argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s BYTES_PER_PEER ITERATIONS [direct|bruck|bruck-packed]\n", argv[0]);
        return 2;
    }
    enum algorithm algo = DIRECT;
    if (argc > 3 && strcmp(argv[3], "bruck") == 0) algo = BRUCK;
    else if (argc > 3 && strcmp(argv[3], "bruck-packed") == 0) algo = BRUCK_PACKED;
    else if (argc > 3 && strcmp(argv[3], "direct") != 0) {
        fprintf(stderr, "unknown algorithm %s: direct, bruck or bruck-packed\n", argv[3]);
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
            int l = snprintf(msg, sizeof msg, "%f\n", run_rank(r, fd, blk, iters, algo));
            if (write(pipes[r][1], msg, (size_t)l) != l) _exit(1);
            _exit(0);
        }
        close(pipes[r][1]);  // a rank that dies then ends the parent's read
    }
    double slowest = 0;
    for (int r = 0; r < N; r++) {
        char b[64] = {0};
        if (read(pipes[r][0], b, sizeof b - 1) <= 0) {
            fprintf(stderr, "rank %d failed\n", r);
            return 1;
        }
        double v = atof(b);
        if (v > slowest) slowest = v;
    }
    for (int r = 0; r < N; r++) wait(0);
    double size = (double)blk * N;
    printf("block %zu: %.1f us per call, busbw %.3f GB/s\n", blk, slowest, size / (slowest * 1e-6) / 1e9 * (N - 1) / N);
    return 0;
}
