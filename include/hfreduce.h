/*
 * hfreduce.h: the C ABI of HFReduce, a collective communication library for CPU-side
 * collectives over TCP (allreduce by double binary tree, ring, recursive doubling and
 * halving-doubling), in the shape of NCCL's API.
 *
 * Link with libhfreduce.so:  cc prog.c $(pkg-config --cflags --libs hfreduce)
 *
 * Conventions
 * - Every function returns an hfrResult_t. On failure, hfrGetLastError(comm) (or
 *   hfrGetLastError(NULL) for the calling thread) gives a sentence that names the argument and
 *   its value, or the rank that failed.
 * - Counts are in elements. A collective is in place when recvbuff == sendbuff.
 * - Every rank must call the same collectives, with the same counts, types and ops, in the same
 *   order. Mismatches are detected and reported as hfrInvalidUsage where the messages disagree.
 * - Nothing here aborts the process on bad input.
 *
 * Thread safety
 * - hfrGetErrorString, hfrGetVersion and hfrGetUniqueId may be called from any thread at any time.
 * - On one communicator, collectives (blocking or async), hfrTest, hfrWait, hfrCommCount,
 *   hfrCommUserRank, hfrCommGetAsyncError and hfrGetLastError may be called from several threads
 *   at once. Collectives issued from several threads must still be issued in the same order on
 *   every rank, which in practice means one issuing thread per communicator.
 * - hfrCommDestroy and hfrCommAbort must not run concurrently with any other call on the same
 *   communicator, and the communicator must not be used after them. hfrCommAbort may be called
 *   from another thread while a collective on that communicator is blocked: the blocked call then
 *   returns hfrAborted. That is the one exception.
 * - Different communicators are independent and may be used from different threads freely.
 *
 * Environment: HFR_DEBUG, HFR_TIMEOUT, HFR_NSOCKS, HFR_ALGO and the others listed in README.md.
 */
#ifndef HFREDUCE_H
#define HFREDUCE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HFR_MAJOR 0
#define HFR_MINOR 1
#define HFR_PATCH 0
/* major * 1000 + minor * 100 + patch, as hfrGetVersion reports it. */
#define HFR_VERSION_CODE (HFR_MAJOR * 1000 + HFR_MINOR * 100 + HFR_PATCH)

/* An opaque communicator handle. */
typedef struct hfrComm* hfrComm_t;
/* An opaque handle of an asynchronous collective; released by hfrWait. */
typedef struct hfrRequest* hfrRequest_t;

#define HFR_UNIQUE_ID_BYTES 128
/* Identifies one communicator's rendezvous: rank 0's address and a random job token. Made by
 * hfrGetUniqueId on the rank that will be rank 0 and passed to the others out of band. */
typedef struct { char internal[HFR_UNIQUE_ID_BYTES]; } hfrUniqueId;

typedef enum {
    hfrSuccess = 0,
    hfrSystemError = 2,     /* a system call failed (socket, thread, memory) */
    hfrInternalError = 3,   /* a bug in HFReduce */
    hfrInvalidArgument = 4, /* a bad argument: NULL pointer, value out of range, unknown enum */
    hfrInvalidUsage = 5,    /* a bad call sequence, or ranks calling with different arguments */
    hfrRemoteError = 6,     /* another rank failed or disconnected; the message names it */
    hfrInProgress = 7,      /* not an error: the operation has not completed yet */
    hfrTimeout = 8,         /* HFR_TIMEOUT passed; the message names the ranks still awaited */
    hfrAborted = 9          /* the communicator was aborted */
} hfrResult_t;

typedef enum {
    hfrInt8 = 0, hfrUint8 = 1, hfrInt32 = 2, hfrUint32 = 3, hfrInt64 = 4, hfrUint64 = 5,
    hfrFloat16 = 6, hfrFloat32 = 7, hfrFloat64 = 8, hfrBfloat16 = 9
} hfrDataType_t;

/* Integer sum and prod wrap around. Integer avg is the wrapped sum divided by the number of
 * ranks, truncated toward zero. float16 and bfloat16 are computed in float32 and rounded to
 * nearest-even. For floating-point min and max, a NaN input gives NaN. */
typedef enum { hfrSum = 0, hfrProd = 1, hfrMax = 2, hfrMin = 3, hfrAvg = 4 } hfrRedOp_t;

/* A static description of a result code, e.g. "invalid argument". Never NULL. */
const char* hfrGetErrorString(hfrResult_t result);

/* The last error on `comm`, or, with comm == NULL, the calling thread's last error: a
 * sentence naming the argument and value, or the failed rank. "" when there was none. The
 * string stays valid until the next failing call on the same communicator or thread (and, for
 * a thread still reading it while others fail, through 7 more). */
const char* hfrGetLastError(hfrComm_t comm);

/* The library's version, e.g. 1203 for 1.2.3. */
hfrResult_t hfrGetVersion(int* version);

/* Makes a unique id. Call it once, on the process that will be rank 0, and pass the id to the
 * other ranks out of band (a file, MPI_Bcast, an environment variable in hex). It reserves the
 * rendezvous port: rank 0 then listens there (until the communicator is created, or its creation
 * fails). The address is HFR_ROOT's host if that is set, otherwise the first IPv4 address of the
 * interfaces HFR_SOCKET_IFNAME selects, or without it of this host's first usable interface,
 * or 127.0.0.1 if there is none. */
hfrResult_t hfrGetUniqueId(hfrUniqueId* id);

/* Creates this rank's communicator of `nranks` ranks. Blocks until every rank has joined or
 * HFR_TIMEOUT passes. The id must come from hfrGetUniqueId, and be the same on every rank. */
hfrResult_t hfrCommInitRank(hfrComm_t* comm, int nranks, hfrUniqueId id, int rank);

/* Creates the communicator from the launcher's environment: RANK/WORLD_SIZE (torchrun, hfrun),
 * OMPI_COMM_WORLD_RANK/SIZE (mpirun) or SLURM_PROCID/NTASKS (srun). The rendezvous address
 * comes from HFR_ROOT=host:port or MASTER_ADDR/MASTER_PORT, the token from HFR_JOB_TOKEN. */
hfrResult_t hfrCommInitFromEnv(hfrComm_t* comm);

/* The number of ranks of `comm`. */
hfrResult_t hfrCommCount(hfrComm_t comm, int* count);

/* This process's rank in `comm`. */
hfrResult_t hfrCommUserRank(hfrComm_t comm, int* rank);

/* hfrSuccess while the communicator is healthy. Otherwise the error that broke it (a failed
 * peer gives hfrRemoteError, a timeout hfrTimeout); hfrGetLastError(comm) then says which. */
hfrResult_t hfrCommGetAsyncError(hfrComm_t comm, hfrResult_t* asyncError);

/* Fails pending collectives with hfrAborted, tells the peers, and frees the communicator.
 * Never waits for other ranks. */
hfrResult_t hfrCommAbort(hfrComm_t comm);

/* Completes pending collectives (each bounded by HFR_TIMEOUT), tells the peers it is leaving,
 * closes the connections and frees the communicator. A rank that still waits for this one then
 * gets hfrInvalidUsage naming it (the ranks called different collectives or counts). */
hfrResult_t hfrCommDestroy(hfrComm_t comm);

/* Registers `size` bytes at `buff` with every HCA port of the communicator now, until
 * hfrCommDeregister: collectives whose buffers lie inside it use that registration instead of
 * registering their buffers for each collective (an HCA keeps writing into the pages it
 * registered, so without this a buffer is registered per collective and may be freed between
 * them). The memory must stay mapped until it is deregistered. Memory the HCA refuses (an
 * unmapped page in the range) gives hfrInvalidArgument. Over TCP it changes nothing. *handle
 * receives the registration. (NCCL's ncclCommRegister.) */
hfrResult_t hfrCommRegister(hfrComm_t comm, void* buff, size_t size, void** handle);

/* Ends a registration; collectives submitted after it register their buffers again. Free the
 * memory only once the collectives using it have completed. A handle deregistered already, or
 * from another communicator, is an error. */
hfrResult_t hfrCommDeregister(hfrComm_t comm, void* handle);

/* Reduces `count` elements of `datatype` with `op` across all ranks. Every rank receives the
 * result in recvbuff. Blocks until done. A count of 0 (here and in the other collectives, not
 * in hfrAllToAllv's per-peer counts nor in hfrSend/hfrRecv) moves no data but still meets the
 * other ranks, like a barrier: ranks that passed different counts get hfrInvalidUsage instead
 * of waiting for each other. */
hfrResult_t hfrAllReduce(const void* sendbuff, void* recvbuff, size_t count,
                         hfrDataType_t datatype, hfrRedOp_t op, hfrComm_t comm);

/* Starts an allreduce and returns at once with a request. The buffers must stay untouched until
 * hfrTest reports it done or hfrWait returns. Collectives on one communicator complete in the
 * order they were issued (sends and receives complete as soon as they are done). */
hfrResult_t hfrAllReduceAsync(const void* sendbuff, void* recvbuff, size_t count,
                              hfrDataType_t datatype, hfrRedOp_t op, hfrComm_t comm, hfrRequest_t* request);

/* Sets *done to 1 when the request has completed (hfrWait then returns its result at once),
 * else 0. Does not release the request. */
hfrResult_t hfrTest(hfrRequest_t request, int* done);

/* Blocks until the request completes, returns its result, and releases the request. A second
 * hfrWait on the same request returns hfrInvalidArgument. */
hfrResult_t hfrWait(hfrRequest_t request);

/* Waits at most `seconds` (0: just looks). When the request has completed, sets *done to 1,
 * releases the request and returns its result, as hfrWait does; otherwise sets *done to 0 and
 * returns hfrSuccess, and the request goes on. For callers that must come back now and then
 * (to handle a signal, say). */
hfrResult_t hfrWaitFor(hfrRequest_t request, double seconds, int* done);

/* ---- The rest of the collective family. Each has an ...Async twin that returns at once with
 * a request (see hfrAllReduceAsync). ---- */

/* Copies `count` elements from `root`'s sendbuff into every rank's recvbuff. Only the root
 * reads sendbuff (the others may pass NULL). In place when the root's sendbuff == recvbuff. */
hfrResult_t hfrBroadcast(const void* sendbuff, void* recvbuff, size_t count, hfrDataType_t datatype, int root, hfrComm_t comm);
hfrResult_t hfrBroadcastAsync(const void* sendbuff, void* recvbuff, size_t count, hfrDataType_t datatype, int root,
                              hfrComm_t comm, hfrRequest_t* request);

/* Reduces `count` elements of every rank's sendbuff with `op` into `root`'s recvbuff. Only the
 * root writes recvbuff (the others may pass NULL). */
hfrResult_t hfrReduce(const void* sendbuff, void* recvbuff, size_t count, hfrDataType_t datatype, hfrRedOp_t op, int root,
                      hfrComm_t comm);
hfrResult_t hfrReduceAsync(const void* sendbuff, void* recvbuff, size_t count, hfrDataType_t datatype, hfrRedOp_t op, int root,
                           hfrComm_t comm, hfrRequest_t* request);

/* Every rank contributes `sendcount` elements. recvbuff receives all ranks' blocks in rank order
 * (nranks * sendcount elements). In place when sendbuff == recvbuff + rank * sendcount elements. */
hfrResult_t hfrAllGather(const void* sendbuff, void* recvbuff, size_t sendcount, hfrDataType_t datatype, hfrComm_t comm);
hfrResult_t hfrAllGatherAsync(const void* sendbuff, void* recvbuff, size_t sendcount, hfrDataType_t datatype, hfrComm_t comm,
                              hfrRequest_t* request);

/* sendbuff holds nranks blocks of `recvcount` elements. Rank r receives in recvbuff the
 * reduction of every rank's block r. In place when recvbuff == sendbuff + rank * recvcount
 * elements. */
hfrResult_t hfrReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount, hfrDataType_t datatype, hfrRedOp_t op,
                             hfrComm_t comm);
hfrResult_t hfrReduceScatterAsync(const void* sendbuff, void* recvbuff, size_t recvcount, hfrDataType_t datatype, hfrRedOp_t op,
                                  hfrComm_t comm, hfrRequest_t* request);

/* Sends block p of sendbuff (countPerPeer elements) to rank p, and receives rank p's block into
 * block p of recvbuff. All peers are in flight at once. In place when sendbuff == recvbuff. */
hfrResult_t hfrAllToAll(const void* sendbuff, void* recvbuff, size_t countPerPeer, hfrDataType_t datatype, hfrComm_t comm);
hfrResult_t hfrAllToAllAsync(const void* sendbuff, void* recvbuff, size_t countPerPeer, hfrDataType_t datatype, hfrComm_t comm,
                             hfrRequest_t* request);

/* All-to-all with per-peer counts and displacements, in elements; zero counts are allowed.
 * sendcounts[p] elements at sdispls[p] go to rank p. recvcounts[p] elements from rank p land at
 * rdispls[p]. Each array has nranks entries. A count that disagrees with the peer's gives
 * hfrInvalidUsage. Out of place only. */
hfrResult_t hfrAllToAllv(const void* sendbuff, const size_t* sendcounts, const size_t* sdispls,
                         void* recvbuff, const size_t* recvcounts, const size_t* rdispls, hfrDataType_t datatype, hfrComm_t comm);
hfrResult_t hfrAllToAllvAsync(const void* sendbuff, const size_t* sendcounts, const size_t* sdispls,
                              void* recvbuff, const size_t* recvcounts, const size_t* rdispls, hfrDataType_t datatype,
                              hfrComm_t comm, hfrRequest_t* request);

/* Returns once every rank has entered the barrier. */
hfrResult_t hfrBarrier(hfrComm_t comm);
hfrResult_t hfrBarrierAsync(hfrComm_t comm, hfrRequest_t* request);

/* Sends `count` elements to `peer`, which calls hfrRecv with the same count and type. Sends
 * from one rank to another match that rank's receives in the order both were issued. Neither
 * call takes part in the collective order, so other ranks need not call anything, and each
 * completes as soon as it is done, whatever was issued before it. */
hfrResult_t hfrSend(const void* sendbuff, size_t count, hfrDataType_t datatype, int peer, hfrComm_t comm);
hfrResult_t hfrSendAsync(const void* sendbuff, size_t count, hfrDataType_t datatype, int peer, hfrComm_t comm,
                         hfrRequest_t* request);

/* Receives `count` elements from `peer` into recvbuff. */
hfrResult_t hfrRecv(void* recvbuff, size_t count, hfrDataType_t datatype, int peer, hfrComm_t comm);
hfrResult_t hfrRecvAsync(void* recvbuff, size_t count, hfrDataType_t datatype, int peer, hfrComm_t comm, hfrRequest_t* request);

#ifdef __cplusplus
}
#endif

#endif /* HFREDUCE_H */
