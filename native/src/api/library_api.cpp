// Exports: versions, errors, logging, live-object counts.
#include <cstddef>

#include "api/checks.h"
#include "core/build_info.h"
#include "core/log.h"

using namespace inf;

extern "C" {

INF_API uint32_t inf_abi_version(void) {
    return INF_ABI_VERSION;
}

INF_API const char* inf_version(void) {
    return version_string();
}

INF_API const char* inf_build_info(void) {
    return build_info_string();
}

INF_API const char* inf_last_error(void) {
    return last_error();
}

INF_API const char* inf_status_name(inf_status status) {
    return status_name(raw_enum(status));
}

INF_API inf_status inf_set_log_callback(inf_log_callback callback, void* user_data) {
    return guard("inf_set_log_callback", [&] { set_log_callback(callback, user_data); });
}

INF_API inf_status inf_set_log_level(inf_log_level level) {
    return guard("inf_set_log_level", [&] {
        const std::int32_t raw = raw_enum(level);
        if (raw < INF_LOG_LEVEL_TRACE || raw > INF_LOG_LEVEL_NONE) {
            fail(INF_STATUS_INVALID_ARGUMENT, "level (", raw,
                 ") is not an inf_log_level (INF_LOG_LEVEL_TRACE = 0 .. INF_LOG_LEVEL_NONE = 5)");
        }
        set_log_level(level);
    });
}

INF_API inf_status inf_get_live_objects(inf_live_objects* out_objects) {
    return guard("inf_get_live_objects", [&] {
        // Version 1 ended before page_pools; callers built against it get the fields they know.
        api::check_versioned(out_objects, "out_objects", "inf_live_objects", offsetof(inf_live_objects, page_pools));
        const LiveCounts counts = HandleRegistry::instance().counts();
        inf_live_objects objects{};
        objects.devices = counts.devices;
        objects.buffers = counts.buffers;
        objects.buffer_bytes = counts.buffer_bytes;
        objects.page_pools = counts.page_pools;
        objects.models = counts.models;
        objects.comms = counts.comms;
        objects.comm_groups = counts.comm_groups;
        api::write_versioned(out_objects, objects);
    });
}

}  // extern "C"
