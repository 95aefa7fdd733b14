// libinfinite_mpi.so: the MPI functions the core's MPI communicator needs, behind the plain-C table of
// mpi_plugin_abi.h. It is the only library of Infinite that links libmpi, so libinfinite.so loads on
// machines without MPI. Every call is serialised by the core (see mpi_plugin_abi.h).
#include <mpi.h>

#include <climits>
#include <cstdio>
#include <cstring>
#include <new>

#include "comm/mpi/mpi_plugin_abi.h"
#include "infinite/infinite.h"

namespace {

int32_t report(char* error, size_t capacity, inf_status status, const char* what, int code) {
    if (error != nullptr && capacity > 0) {
        char text[MPI_MAX_ERROR_STRING] = {};
        int length = 0;
        if (code == MPI_SUCCESS || MPI_Error_string(code, text, &length) != MPI_SUCCESS) {
            text[0] = '\0';
        }
        std::snprintf(error, capacity, "%s%s%s", what, text[0] != '\0' ? ": " : "", text);
    }
    return status;
}

const char* library_version() {
    static char text[MPI_MAX_LIBRARY_VERSION_STRING] = {};
    if (text[0] == '\0') {
        int length = 0;
        if (MPI_Get_library_version(text, &length) != MPI_SUCCESS) {
            std::snprintf(text, sizeof text, "MPI (unknown library)");
        }
        char* newline = std::strchr(text, '\n');
        if (newline != nullptr) {
            *newline = '\0';
        }
    }
    return text;
}

int32_t open(void** comm, int32_t* rank, int32_t* size, int32_t* initialized_here, char* error, size_t capacity) {
    *initialized_here = 0;
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized != 0) {
        return report(error, capacity, INF_STATUS_BACKEND_UNAVAILABLE,
                      "MPI was finalised already in this process, and it cannot start again", MPI_SUCCESS);
    }
    int initialized = 0;
    MPI_Initialized(&initialized);
    int provided = MPI_THREAD_SINGLE;
    if (initialized == 0) {
        const int code = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided);
        if (code != MPI_SUCCESS) {
            return report(error, capacity, INF_STATUS_BACKEND_UNAVAILABLE, "MPI_Init_thread failed", code);
        }
        *initialized_here = 1;
    } else {
        MPI_Query_thread(&provided);
    }
    if (provided < MPI_THREAD_SERIALIZED) {
        // Left initialised: whoever owns MPI finalises it (the core does when initialized_here).
        return report(error, capacity, INF_STATUS_BACKEND_UNAVAILABLE,
                      "MPI provides less than MPI_THREAD_SERIALIZED; Infinite calls MPI from several threads",
                      MPI_SUCCESS);
    }
    auto* dup = new (std::nothrow) MPI_Comm(MPI_COMM_NULL);
    if (dup == nullptr) {
        return report(error, capacity, INF_STATUS_OUT_OF_MEMORY, "out of host memory", MPI_SUCCESS);
    }
    int code = MPI_Comm_dup(MPI_COMM_WORLD, dup);
    if (code == MPI_SUCCESS) {
        code = MPI_Comm_set_errhandler(*dup, MPI_ERRORS_RETURN);
    }
    int r = 0;
    int n = 0;
    if (code == MPI_SUCCESS) code = MPI_Comm_rank(*dup, &r);
    if (code == MPI_SUCCESS) code = MPI_Comm_size(*dup, &n);
    if (code != MPI_SUCCESS) {
        if (*dup != MPI_COMM_NULL) {
            MPI_Comm_free(dup);
        }
        delete dup;
        return report(error, capacity, INF_STATUS_BACKEND_UNAVAILABLE, "MPI_Comm_dup(MPI_COMM_WORLD) failed", code);
    }
    *comm = dup;
    *rank = r;
    *size = n;
    return INF_STATUS_OK;
}

int32_t close(void* comm, char* error, size_t capacity) {
    auto* handle = static_cast<MPI_Comm*>(comm);
    const int code = MPI_Comm_free(handle);
    delete handle;
    return code == MPI_SUCCESS ? INF_STATUS_OK
                               : report(error, capacity, INF_STATUS_PEER_FAILED, "MPI_Comm_free failed", code);
}

int32_t isend(void* comm, const void* data, uint64_t bytes, int32_t peer, int32_t tag, void** request, char* error,
              size_t capacity) {
    if (bytes > static_cast<uint64_t>(INT_MAX)) {
        return report(error, capacity, INF_STATUS_UNSUPPORTED, "MPI messages are limited to 2^31 - 1 bytes here",
                      MPI_SUCCESS);
    }
    auto* handle = new (std::nothrow) MPI_Request(MPI_REQUEST_NULL);
    if (handle == nullptr) {
        return report(error, capacity, INF_STATUS_OUT_OF_MEMORY, "out of host memory", MPI_SUCCESS);
    }
    const int code = MPI_Isend(data, static_cast<int>(bytes), MPI_BYTE, peer, tag, *static_cast<MPI_Comm*>(comm), handle);
    if (code != MPI_SUCCESS) {
        delete handle;
        return report(error, capacity, INF_STATUS_PEER_FAILED, "MPI_Isend failed", code);
    }
    *request = handle;
    return INF_STATUS_OK;
}

int32_t test(void* request, int32_t* done, char* error, size_t capacity) {
    auto* handle = static_cast<MPI_Request*>(request);
    int flag = 0;
    const int code = MPI_Test(handle, &flag, MPI_STATUS_IGNORE);
    if (code != MPI_SUCCESS) {
        return report(error, capacity, INF_STATUS_PEER_FAILED, "MPI_Test of a send failed", code);
    }
    *done = flag != 0 ? 1 : 0;
    if (flag != 0) {
        delete handle;
    }
    return INF_STATUS_OK;
}

int32_t improbe(void* comm, int32_t peer, int32_t tag, int32_t* found, void** message, uint64_t* bytes, char* error,
                size_t capacity) {
    MPI_Message matched = MPI_MESSAGE_NULL;
    MPI_Status status{};
    int flag = 0;
    int code = MPI_Improbe(peer, tag, *static_cast<MPI_Comm*>(comm), &flag, &matched, &status);
    if (code != MPI_SUCCESS) {
        return report(error, capacity, INF_STATUS_PEER_FAILED, "MPI_Improbe failed", code);
    }
    *found = 0;
    if (flag == 0) {
        return INF_STATUS_OK;
    }
    int count = 0;
    code = MPI_Get_count(&status, MPI_BYTE, &count);
    if (code != MPI_SUCCESS || count == MPI_UNDEFINED) {
        return report(error, capacity, INF_STATUS_PEER_FAILED, "MPI_Get_count of a probed message failed", code);
    }
    auto* handle = new (std::nothrow) MPI_Message(matched);
    if (handle == nullptr) {
        return report(error, capacity, INF_STATUS_OUT_OF_MEMORY, "out of host memory", MPI_SUCCESS);
    }
    *found = 1;
    *message = handle;
    *bytes = static_cast<uint64_t>(count);
    return INF_STATUS_OK;
}

int32_t mrecv(void* message, void* data, uint64_t bytes, char* error, size_t capacity) {
    auto* handle = static_cast<MPI_Message*>(message);
    const int code = MPI_Mrecv(data, static_cast<int>(bytes), MPI_BYTE, handle, MPI_STATUS_IGNORE);
    delete handle;
    return code == MPI_SUCCESS ? INF_STATUS_OK
                               : report(error, capacity, INF_STATUS_PEER_FAILED, "MPI_Mrecv failed", code);
}

int32_t finalize(char* error, size_t capacity) {
    const int code = MPI_Finalize();
    return code == MPI_SUCCESS ? INF_STATUS_OK
                               : report(error, capacity, INF_STATUS_INTERNAL, "MPI_Finalize failed", code);
}

const inf_mpi_plugin_api kApi = {
    sizeof(inf_mpi_plugin_api), INF_MPI_PLUGIN_ABI_VERSION, library_version, open, close, isend, test, improbe,
    mrecv, finalize,
};

}  // namespace

extern "C" __attribute__((visibility("default"))) const inf_mpi_plugin_api* inf_mpi_plugin_get(uint32_t abi_version) {
    return abi_version == INF_MPI_PLUGIN_ABI_VERSION ? &kApi : nullptr;
}
