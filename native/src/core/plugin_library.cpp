#include "core/plugin_library.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>

#include "core/cuda_loader.h"
#include "core/status.h"

namespace inf {

namespace {

std::string dl_error() {
    const char* text = dlerror();
    return text != nullptr ? text : "unknown dynamic loader error";
}

}  // namespace

PluginLibrary open_plugin(const char* what, const char* kind, const char* file, const char* env, const char* shipped,
                          const char* entry_name, int dlopen_flags) {
    PluginLibrary result;
    const char* override_path = std::getenv(env);
    if (override_path != nullptr && override_path[0] != '\0') {
        result.path = override_path;
    } else {
        const std::string directory = library_directory();
        result.path = directory.empty() ? std::string(file) : directory + "/" + file;
        if (access(result.path.c_str(), F_OK) != 0) {
            result.missing = true;
            result.error = cat(what, " unavailable: ", file, " not found in ",
                               directory.empty() ? std::string("the directory of libinfinite.so") : directory, " (",
                               shipped, "; ", env, " names another location)");
            return result;
        }
    }
    void* library = dlopen(result.path.c_str(), dlopen_flags);
    if (library == nullptr) {
        result.error = cat(what, " unavailable: cannot load ", file, ": ", dl_error());
        return result;
    }
    result.entry = dlsym(library, entry_name);
    if (result.entry == nullptr) {
        result.error = cat(what, " unavailable: ", result.path, " is not an Infinite ", kind, " plug-in: ", dl_error());
    }
    return result;
}

}  // namespace inf
