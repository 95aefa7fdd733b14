// Finding and opening a plug-in library at run time (the CUDA backend, the MPI communicator): the path from an
// environment override or next to libinfinite.so, dlopen, and the entry point. Kept in one place so every plug-in
// reports a missing or foreign library the same way.
#pragma once

#include <string>

namespace inf {

struct PluginLibrary {
    std::string path;
    void* entry = nullptr;  // the entry point; null on failure
    bool missing = false;   // the file was not found (as opposed to found but not loadable)
    std::string error;      // "<what> unavailable: ..." on failure
};

// what: "CUDA backend"; kind: "CUDA" (as in "an Infinite CUDA plug-in"); file: "libinfinite_cuda.so"; env: its
// override variable; shipped: how the file normally gets there ("it is built and shipped next to libinfinite.so").
// The handle is never closed.
PluginLibrary open_plugin(const char* what, const char* kind, const char* file, const char* env, const char* shipped,
                          const char* entry_name, int dlopen_flags);

}  // namespace inf
