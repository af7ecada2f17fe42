/*
 * Blocking and asynchronous allreduce of float32 and bfloat16 through the C API, with every
 * result checked. Build and run:
 *   cc allreduce.c $(pkg-config --cflags --libs hfreduce) -o allreduce
 *   hfrun -n 3 ./allreduce
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "hfreduce.h"

#define CHECK(call)                                                                       \
    do {                                                                                  \
        hfrResult_t r_ = (call);                                                          \
        if (r_ != hfrSuccess) {                                                           \
            fprintf(stderr, "%s failed: %s: %s\n", #call, hfrGetErrorString(r_),          \
                    hfrGetLastError(NULL));                                               \
            exit(1);                                                                      \
        }                                                                                 \
    } while (0)

static uint16_t to_bf16(float f) { uint32_t u; memcpy(&u, &f, 4); return (uint16_t)(u >> 16); } /* exact for small integers */
static float from_bf16(uint16_t b) { uint32_t u = (uint32_t)b << 16; float f; memcpy(&f, &u, 4); return f; }

int main(void) {
    hfrComm_t comm;
    CHECK(hfrCommInitFromEnv(&comm));
    int rank, n;
    CHECK(hfrCommUserRank(comm, &rank));
    CHECK(hfrCommCount(comm, &n));
    const size_t count = 100003;  /* prime, not a multiple of any chunk */
    int wrong = 0;

    /* float32 sum, out of place and blocking: element i of rank r is r + 1 + i % 7. */
    float* send = malloc(count * sizeof(float));
    float* recv = malloc(count * sizeof(float));
    for (size_t i = 0; i < count; i++) send[i] = (float)(rank + 1 + i % 7);
    CHECK(hfrAllReduce(send, recv, count, hfrFloat32, hfrSum, comm));
    for (size_t i = 0; i < count; i++)
        if (recv[i] != (float)(n * (n + 1) / 2 + n * (i % 7))) wrong++;

    /* bfloat16 max, in place and asynchronous, overlapped with a float32 avg. */
    uint16_t* bf = malloc(count * sizeof(uint16_t));
    for (size_t i = 0; i < count; i++) bf[i] = to_bf16((float)((rank * 5 + i) % 11));
    for (size_t i = 0; i < count; i++) send[i] = (float)(2 * rank);
    hfrRequest_t r1, r2;
    CHECK(hfrAllReduceAsync(bf, bf, count, hfrBfloat16, hfrMax, comm, &r1));
    CHECK(hfrAllReduceAsync(send, recv, count, hfrFloat32, hfrAvg, comm, &r2));
    int done = 0;
    CHECK(hfrTest(r1, &done));
    CHECK(hfrWait(r1));
    CHECK(hfrWait(r2));
    for (size_t i = 0; i < count; i++) {
        int best = 0;
        for (int r = 0; r < n; r++) { int v = (int)((r * 5 + i) % 11); if (v > best) best = v; }
        if (from_bf16(bf[i]) != (float)best) wrong++;
        if (recv[i] != (float)(n - 1)) wrong++; /* average of 0, 2, ..., 2(n-1) */
    }

    printf("rank %d of %d: %d wrong values\n", rank, n, wrong);
    CHECK(hfrCommDestroy(comm));
    free(send); free(recv); free(bf);
    return wrong == 0 ? 0 : 1;
}
