/* The C interface between libinfinite.so and its MPI plug-in libinfinite_mpi.so (this directory).
 *
 * The core never links MPI: it dlopen()s the plug-in, which links libmpi, and reads one table of plain-C
 * functions from its single export. Every function returns an inf_status value (0 = OK) and, on failure,
 * writes a zero-terminated reason of at most error_capacity bytes into error. Opaque pointers (comm,
 * request, message) are the plug-in's own allocations, released by the calls that say so.
 *
 * Not thread-safe: the core serialises every call with one mutex (MPI may grant only
 * MPI_THREAD_SERIALIZED). Bump INF_MPI_PLUGIN_ABI_VERSION on any change; the loader refuses another. */
#ifndef INFINITE_MPI_PLUGIN_ABI_H
#define INFINITE_MPI_PLUGIN_ABI_H

#include <stddef.h>
#include <stdint.h>

#define INF_MPI_PLUGIN_ABI_VERSION 1u
#define INF_MPI_PLUGIN_ENTRY_NAME "inf_mpi_plugin_get"
#define INF_MPI_PLUGIN_ERROR_CAPACITY 512

typedef struct inf_mpi_plugin_api {
    uint32_t size;
    uint32_t abi_version;
    /* MPI_Get_library_version's first line, for the logs. */
    const char* (*library_version)(void);
    /* Initialises MPI unless it is (asking MPI_THREAD_MULTIPLE, accepting MPI_THREAD_SERIALIZED or better;
     * *initialized_here = 1 when this call did), then duplicates MPI_COMM_WORLD with errors returned, not
     * fatal. The duplicate keeps each endpoint's messages apart from other endpoints' and the application's
     * (MPI_Comm_dup is collective: every rank opens its endpoints in one order). */
    int32_t (*open)(void** comm, int32_t* rank, int32_t* size, int32_t* initialized_here, char* error,
                    size_t error_capacity);
    /* Frees a communicator from open. */
    int32_t (*close)(void* comm, char* error, size_t error_capacity);
    /* MPI_Isend of bytes (<= INT_MAX) that must stay untouched until test reports the request done. */
    int32_t (*isend)(void* comm, const void* data, uint64_t bytes, int32_t peer, int32_t tag, void** request,
                     char* error, size_t error_capacity);
    /* MPI_Test; *done = 1 frees the request. */
    int32_t (*test)(void* request, int32_t* done, char* error, size_t error_capacity);
    /* MPI_Improbe from (peer, tag): *found = 1 with *message (matched: nobody else can receive it) and its
     * length in *bytes. */
    int32_t (*improbe)(void* comm, int32_t peer, int32_t tag, int32_t* found, void** message, uint64_t* bytes,
                       char* error, size_t error_capacity);
    /* MPI_Mrecv of a matched message of exactly bytes into data; frees message. */
    int32_t (*mrecv)(void* message, void* data, uint64_t bytes, char* error, size_t error_capacity);
    /* MPI_Finalize. */
    int32_t (*finalize)(char* error, size_t error_capacity);
} inf_mpi_plugin_api;

typedef const inf_mpi_plugin_api* (*inf_mpi_plugin_get_fn)(uint32_t abi_version);

#endif
