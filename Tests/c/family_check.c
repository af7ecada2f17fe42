/*
 * Every collective of the family through the C API, checked, plus bad arguments.
 * Run: hfrun -n N ./family_check
 */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hfreduce.h"

static int failures = 0;
#define EXPECT(cond, ...) do { if (!(cond)) { printf("FAIL: " __VA_ARGS__); printf("\n"); failures++; } } while (0)
#define OK(call) do { hfrResult_t r_ = (call); EXPECT(r_ == hfrSuccess, "%s -> %d: %s", #call, r_, hfrGetLastError(NULL)); } while (0)

int main(void) {
    hfrComm_t comm;
    if (hfrCommInitFromEnv(&comm) != hfrSuccess) { printf("FAIL init: %s\n", hfrGetLastError(NULL)); return 1; }
    int rank, n;
    hfrCommUserRank(comm, &rank);
    hfrCommCount(comm, &n);
    enum { C = 1003 };
    int32_t* a = malloc(sizeof(int32_t) * C * n);
    int32_t* b = malloc(sizeof(int32_t) * C * n);

    /* Broadcast from the last rank; non-roots pass NULL as sendbuff. */
    for (int i = 0; i < C; i++) a[i] = (rank == n - 1) ? i * 3 : -1;
    OK(hfrBroadcast(rank == n - 1 ? a : NULL, a, C, hfrInt32, n - 1, comm));
    for (int i = 0; i < C; i++) EXPECT(a[i] == i * 3, "broadcast [%d] = %d", i, a[i]);

    /* Reduce (max) to rank 0; non-roots pass NULL as recvbuff. */
    for (int i = 0; i < C; i++) a[i] = rank * 10 + i % 5;
    OK(hfrReduce(a, rank == 0 ? b : NULL, C, hfrInt32, hfrMax, 0, comm));
    if (rank == 0) for (int i = 0; i < C; i++) EXPECT(b[i] == (n - 1) * 10 + i % 5, "reduce [%d] = %d", i, b[i]);

    /* Allgather, asynchronous. */
    hfrRequest_t req;
    for (int i = 0; i < C; i++) a[i] = rank * 100000 + i;
    OK(hfrAllGatherAsync(a, b, C, hfrInt32, comm, &req));
    OK(hfrWait(req));
    for (int p = 0; p < n; p++) for (int i = 0; i < C; i++) EXPECT(b[p * C + i] == p * 100000 + i, "allgather [%d][%d]", p, i);

    /* Reduce-scatter (sum). */
    for (int j = 0; j < C * n; j++) a[j] = rank + j;
    OK(hfrReduceScatter(a, b, C, hfrInt32, hfrSum, comm));
    for (int i = 0; i < C; i++) EXPECT(b[i] == n * (n - 1) / 2 + n * (rank * C + i), "reduce-scatter [%d] = %d", i, b[i]);

    /* All-to-all. */
    for (int p = 0; p < n; p++) for (int i = 0; i < C; i++) a[p * C + i] = rank * 1000 + p * 10 + i % 7;
    OK(hfrAllToAll(a, b, C, hfrInt32, comm));
    for (int p = 0; p < n; p++) for (int i = 0; i < C; i++) EXPECT(b[p * C + i] == p * 1000 + rank * 10 + i % 7, "all-to-all [%d][%d]", p, i);

    /* All-to-all-v: rank s sends (s + d) % 2 * 5 elements to d, so some counts are zero. */
    size_t sc[64], sd[64], rc[64], rd[64], at = 0, rat = 0;
    for (int p = 0; p < n; p++) {
        sc[p] = (size_t)((rank + p) % 2 * 5); sd[p] = at; at += sc[p];
        rc[p] = (size_t)((p + rank) % 2 * 5); rd[p] = rat; rat += rc[p];
        for (size_t i = 0; i < sc[p]; i++) a[sd[p] + i] = rank * 100 + p * 10 + (int)i;
    }
    OK(hfrAllToAllv(a, sc, sd, b, rc, rd, hfrInt32, comm));
    for (int p = 0; p < n; p++) for (size_t i = 0; i < rc[p]; i++) EXPECT(b[rd[p] + i] == p * 100 + rank * 10 + (int)i, "all-to-all-v [%d][%zu]", p, i);

    /* Barrier, and send/recv around the ring. */
    OK(hfrBarrier(comm));
    if (n > 1) {
        hfrRequest_t rr, sr;
        for (int i = 0; i < C; i++) a[i] = rank * 7 + i;
        OK(hfrRecvAsync(b, C, hfrInt32, (rank - 1 + n) % n, comm, &rr));
        OK(hfrSendAsync(a, C, hfrInt32, (rank + 1) % n, comm, &sr));
        OK(hfrWait(rr));
        OK(hfrWait(sr));
        int left = (rank - 1 + n) % n;
        for (int i = 0; i < C; i++) EXPECT(b[i] == left * 7 + i, "recv [%d] = %d", i, b[i]);
    }

    /* Bad arguments. */
    EXPECT(hfrBroadcast(a, a, C, hfrInt32, n, comm) == hfrInvalidArgument && strstr(hfrGetLastError(comm), "root is"), "root out of range: %s", hfrGetLastError(comm));
    EXPECT(hfrReduce(a, b, C, hfrInt32, (hfrRedOp_t)7, 0, comm) == hfrInvalidArgument, "bad op");
    EXPECT(hfrAllToAllv(a, NULL, sd, b, rc, rd, hfrInt32, comm) == hfrInvalidArgument && strstr(hfrGetLastError(comm), "sendcounts is NULL"), "NULL sendcounts: %s", hfrGetLastError(comm));
    EXPECT(hfrSend(a, C, hfrInt32, rank, comm) == hfrInvalidArgument && strstr(hfrGetLastError(comm), "this rank itself"), "send to self: %s", hfrGetLastError(comm));
    EXPECT(hfrRecv(NULL, C, hfrInt32, (rank + 1) % n, comm) == hfrInvalidArgument || n == 1, "recv NULL buffer");
    EXPECT(hfrBarrierAsync(comm, NULL) == hfrInvalidArgument, "barrier NULL request");
    EXPECT(hfrAllGather(a, a + 1, C, hfrInt32, comm) == hfrInvalidArgument && strstr(hfrGetLastError(comm), "overlap"), "overlapping allgather: %s", hfrGetLastError(comm));
    EXPECT(hfrBroadcast(a, NULL, C, hfrInt32, 0, comm) == hfrInvalidArgument && strstr(hfrGetLastError(comm), "receive buffer is NULL"),
           "broadcast into NULL: %s", hfrGetLastError(comm));
    {
        /* All-to-all-v: this rank's block to itself must have one length on both sides (a NULL
           send buffer with nothing to send but a block to receive from itself once crashed). */
        size_t zero[64] = {0}, self[64] = {0}, one[64], at1[64];
        self[rank] = 4;
        EXPECT(hfrAllToAllv(NULL, zero, zero, b, self, zero, hfrInt32, comm) == hfrInvalidArgument
               && strstr(hfrGetLastError(comm), "sendcounts[") && strstr(hfrGetLastError(comm), "recvcounts["),
               "self block of two lengths: %s", hfrGetLastError(comm));
        for (int p = 0; p < n; p++) { one[p] = 1; at1[p] = (size_t)p; }
        if (n > 1) {
            EXPECT(hfrAllToAllv(a, one, at1, b, one, zero, hfrInt32, comm) == hfrInvalidArgument && strstr(hfrGetLastError(comm), "overlap"),
                   "receive blocks on the same bytes: %s", hfrGetLastError(comm));
        }
        at1[n - 1] = (size_t)1 << 61;
        EXPECT(hfrAllToAllv(a, one, sd, b, one, at1, hfrInt32, comm) == hfrInvalidArgument
               && strstr(hfrGetLastError(comm), "rdispls[") && strstr(hfrGetLastError(comm), "overflows"),
               "displacement past the address space: %s", hfrGetLastError(comm));
    }
    {
        /* A request handle, once waited on, stays invalid: never taken for a newer request. */
        hfrRequest_t first, second;
        OK(hfrBarrierAsync(comm, &first));
        OK(hfrWait(first));
        for (int k = 0; k < 8; k++) {
            OK(hfrBarrierAsync(comm, &second));
            EXPECT(second != first, "a new request got the handle of one already released");
            EXPECT(hfrWait(first) == hfrInvalidArgument, "waiting twice on a request");
            OK(hfrWait(second));
        }
    }
    OK(hfrBarrier(comm));

    OK(hfrCommDestroy(comm));
    free(a); free(b);
    printf("rank %d: family_check %s (%d failures)\n", rank, failures ? "FAILED" : "OK", failures);
    return failures ? 1 : 0;
}
