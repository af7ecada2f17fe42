/*
 * Exercises the C API the way a C program written from the header would: a unique id made on
 * rank 0 and passed through a file, hfrCommInitRank, collectives, and every kind of bad argument,
 * each of which must return the documented code and a message naming the argument.
 * Run: hfrun -n 3 ./api_check ID_FILE
 */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "hfreduce.h"

static int failures = 0;

static void expect(const char* what, hfrResult_t got, hfrResult_t want, const char* mention, hfrComm_t comm) {
    const char* msg = hfrGetLastError(comm);
    if (got != want || (mention && !strstr(msg, mention))) {
        printf("FAIL %s: got %d (%s) \"%s\", want %d mentioning \"%s\"\n", what, got, hfrGetErrorString(got), msg, want,
               mention ? mention : "");
        failures++;
    }
}

int main(int argc, char** argv) {
    if (argc != 2) { fprintf(stderr, "usage: api_check ID_FILE\n"); return 2; }
    int rank = atoi(getenv("RANK")), n = atoi(getenv("WORLD_SIZE"));
    hfrUniqueId id;
    if (rank == 0) {
        expect("hfrGetUniqueId(NULL)", hfrGetUniqueId(NULL), hfrInvalidArgument, "id is NULL", NULL);
        /* The id carries an address of the interfaces HFR_SOCKET_IFNAME selects. */
        setenv("HFR_SOCKET_IFNAME", "=nosuchnic0", 1);
        hfrUniqueId unused;
        expect("hfrGetUniqueId with no interface", hfrGetUniqueId(&unused), hfrInvalidArgument, "HFR_SOCKET_IFNAME==nosuchnic0", NULL);
        unsetenv("HFR_SOCKET_IFNAME");
        if (hfrGetUniqueId(&id) != hfrSuccess) { printf("FAIL hfrGetUniqueId: %s\n", hfrGetLastError(NULL)); return 1; }
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", argv[1]);
        FILE* f = fopen(tmp, "wb");
        fwrite(&id, sizeof id, 1, f);
        fclose(f);
        rename(tmp, argv[1]);
    } else {
        FILE* f = NULL;
        for (int i = 0; i < 3000 && !(f = fopen(argv[1], "rb")); i++) usleep(10000);
        if (!f || fread(&id, sizeof id, 1, f) != 1) { printf("FAIL: no id file\n"); return 1; }
        fclose(f);
    }

    hfrComm_t comm = NULL;
    hfrUniqueId zero;
    memset(&zero, 0, sizeof zero);
    expect("init NULL comm", hfrCommInitRank(NULL, n, id, rank), hfrInvalidArgument, "comm is NULL", NULL);
    expect("init nranks 0", hfrCommInitRank(&comm, 0, id, rank), hfrInvalidArgument, "nranks is 0", NULL);
    expect("init nranks huge", hfrCommInitRank(&comm, 2000000, id, rank), hfrInvalidArgument, "at most 1048576 ranks", NULL);
    expect("init rank out of range", hfrCommInitRank(&comm, n, id, n), hfrInvalidArgument, "rank is", NULL);
    expect("init zero id", hfrCommInitRank(&comm, n, zero, rank), hfrInvalidArgument, "not made by hfrGetUniqueId", NULL);
    hfrUniqueId bent = id;
    bent.internal[9] ^= 1;
    expect("init corrupted id", hfrCommInitRank(&comm, n, bent, rank), hfrInvalidArgument, "corrupted", NULL);
    if (hfrCommInitRank(&comm, n, id, rank) != hfrSuccess) { printf("FAIL init: %s\n", hfrGetLastError(NULL)); return 1; }

    int count = -1, me = -1;
    expect("count NULL comm", hfrCommCount(NULL, &count), hfrInvalidArgument, "comm is NULL", NULL);
    expect("count NULL out", hfrCommCount(comm, NULL), hfrInvalidArgument, "count is NULL", comm);
    if (hfrCommCount(comm, &count) || hfrCommUserRank(comm, &me) || count != n || me != rank) {
        printf("FAIL count/rank: %d %d\n", count, me); failures++;
    }
    double buf[64];
    for (int i = 0; i < 64; i++) buf[i] = rank;
    expect("bad datatype", hfrAllReduce(buf, buf, 64, (hfrDataType_t)10, hfrSum, comm), hfrInvalidArgument, "datatype 10", comm);
    expect("bad op", hfrAllReduce(buf, buf, 64, hfrFloat64, (hfrRedOp_t)-1, comm), hfrInvalidArgument, "is not an hfrRedOp_t", comm);
    expect("NULL send", hfrAllReduce(NULL, buf, 64, hfrFloat64, hfrSum, comm), hfrInvalidArgument, "send buffer is NULL", comm);
    expect("NULL recv", hfrAllReduce(buf, NULL, 64, hfrFloat64, hfrSum, comm), hfrInvalidArgument, "receive buffer is NULL", comm);
    expect("huge count", hfrAllReduce(buf, buf, (size_t)-1, hfrFloat64, hfrSum, comm), hfrInvalidArgument, "count", comm);
    expect("NULL request", hfrAllReduceAsync(buf, buf, 64, hfrFloat64, hfrSum, comm, NULL), hfrInvalidArgument, "request is NULL", comm);
    expect("zero count", hfrAllReduce(NULL, NULL, 0, hfrFloat64, hfrSum, comm), hfrSuccess, NULL, comm);
    expect("allreduce", hfrAllReduce(buf, buf, 64, hfrFloat64, hfrSum, comm), hfrSuccess, NULL, comm);
    for (int i = 0; i < 64; i++) if (buf[i] != n * (n - 1) / 2.0) { printf("FAIL value %g\n", buf[i]); failures++; break; }
    hfrRequest_t req;
    expect("async", hfrAllReduceAsync(buf, buf, 64, hfrFloat64, hfrMax, comm, &req), hfrSuccess, NULL, comm);
    int done = -1;
    expect("test NULL done", hfrTest(req, NULL), hfrInvalidArgument, "done is NULL", NULL);
    expect("test", hfrTest(req, &done), hfrSuccess, NULL, NULL);
    expect("wait", hfrWait(req), hfrSuccess, NULL, NULL);
    expect("wait twice", hfrWait(req), hfrInvalidArgument, "not a live request", NULL);
    expect("wait NULL", hfrWait(NULL), hfrInvalidArgument, "request is NULL", NULL);
    expect("async for waitFor", hfrAllReduceAsync(buf, buf, 64, hfrFloat64, hfrMin, comm, &req), hfrSuccess, NULL, comm);
    expect("waitFor NULL done", hfrWaitFor(req, 1.0, NULL), hfrInvalidArgument, "done is NULL", NULL);
    expect("waitFor negative", hfrWaitFor(req, -1.0, &done), hfrInvalidArgument, "must not be negative", NULL);
    done = 0;
    for (int i = 0; i < 1000 && !done; i++) expect("waitFor", hfrWaitFor(req, 0.01, &done), hfrSuccess, NULL, NULL);
    if (!done) { printf("FAIL waitFor never reported done\n"); failures++; }
    expect("waitFor after done", hfrWaitFor(req, 0.0, &done), hfrInvalidArgument, "not a live request", NULL);
    void* reg = NULL;
    expect("register NULL handle", hfrCommRegister(comm, buf, sizeof buf, NULL), hfrInvalidArgument, "handle is NULL", comm);
    expect("register NULL buffer", hfrCommRegister(comm, NULL, 64, &reg), hfrInvalidArgument, "the buffer is NULL", comm);
    expect("register 0 bytes", hfrCommRegister(comm, buf, 0, &reg), hfrInvalidArgument, "size is 0", comm);
    expect("register huge size", hfrCommRegister(comm, buf, (size_t)-1, &reg), hfrInvalidArgument, "size 18446744073709551615 is too large", comm);
    expect("register", hfrCommRegister(comm, buf, sizeof buf, &reg), hfrSuccess, NULL, comm);
    for (int i = 0; i < 64; i++) buf[i] = rank;
    expect("allreduce in registered memory", hfrAllReduce(buf, buf, 64, hfrFloat64, hfrSum, comm), hfrSuccess, NULL, comm);
    for (int i = 0; i < 64; i++) if (buf[i] != n * (n - 1) / 2.0) { printf("FAIL registered value %g\n", buf[i]); failures++; break; }
    expect("deregister", hfrCommDeregister(comm, reg), hfrSuccess, NULL, comm);
    expect("deregister twice", hfrCommDeregister(comm, reg), hfrInvalidArgument, "not a live registration", comm);
    expect("deregister NULL", hfrCommDeregister(comm, NULL), hfrInvalidArgument, "not a live registration", comm);
    /* The displacement of an empty block is never used, whatever it is. */
    size_t zeros[n], far[n];
    for (int i = 0; i < n; i++) { zeros[i] = 0; far[i] = (size_t)1 << 62; }
    expect("all-to-all-v, empty blocks far away", hfrAllToAllv(buf, zeros, far, buf + 32, zeros, far, hfrFloat64, comm), hfrSuccess, NULL, comm);
    void* kept = NULL;
    expect("register, kept past destroy", hfrCommRegister(comm, buf, sizeof buf, &kept), hfrSuccess, NULL, comm);
    hfrResult_t async = hfrInternalError;
    expect("async error", hfrCommGetAsyncError(comm, &async), hfrSuccess, NULL, comm);
    if (async != hfrSuccess) { printf("FAIL async error %d\n", async); failures++; }
    int version = 0;
    expect("version", hfrGetVersion(&version), hfrSuccess, NULL, NULL);
    if (version != HFR_VERSION_CODE) { printf("FAIL version %d\n", version); failures++; }
    if (strlen(hfrGetErrorString((hfrResult_t)1234)) == 0) { printf("FAIL error string\n"); failures++; }
    expect("destroy", hfrCommDestroy(comm), hfrSuccess, NULL, NULL);
    expect("use after destroy", hfrAllReduce(buf, buf, 64, hfrFloat64, hfrSum, comm), hfrInvalidArgument, "not a live communicator", NULL);
    expect("destroy twice", hfrCommDestroy(comm), hfrInvalidArgument, "not a live communicator", NULL);
    expect("deregister after destroy", hfrCommDeregister(comm, kept), hfrInvalidArgument, "not a live communicator", NULL);
    printf("rank %d: api_check %s (%d failures)\n", rank, failures ? "FAILED" : "OK", failures);
    return failures ? 1 : 0;
}
