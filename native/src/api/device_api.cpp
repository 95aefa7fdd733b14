// Exports: backends and devices.
#include "api/checks.h"

using namespace inf;

extern "C" {

INF_API inf_status inf_backend_load(inf_device_kind kind) {
    return guard("inf_backend_load", [&] {
        api::check_kind(kind);
        require_backend(kind);
    });
}

INF_API inf_status inf_device_count(inf_device_kind kind, int32_t* out_count) {
    return guard("inf_device_count", [&] {
        api::check_kind(kind);
        api::require_pointer(out_count, "out_count");
        // An unavailable backend has no devices; inf_backend_load says why.
        const Backend* backend = try_backend(kind);
        *out_count = backend != nullptr ? backend->device_count() : 0;
    });
}

INF_API inf_status inf_device_get_info(inf_device_kind kind, int32_t ordinal, inf_device_info* out_info) {
    return guard("inf_device_get_info", [&] {
        api::check_kind(kind);
        api::check_versioned(out_info, "out_info", "inf_device_info");
        inf_device_info info{};
        require_backend(kind).device_info(ordinal, info);
        api::write_versioned(out_info, info);
    });
}

INF_API inf_status inf_device_create(inf_device_kind kind, int32_t ordinal, inf_device** out_device) {
    return guard("inf_device_create", [&] {
        if (out_device != nullptr) {
            *out_device = nullptr;  // a failed call never leaves a stale handle behind
        }
        api::check_kind(kind);
        api::require_pointer(out_device, "out_device");
        auto device = std::make_shared<Device>(require_backend(kind), ordinal);
        const std::uintptr_t handle = HandleRegistry::instance().add(HandleKind::device, std::move(device));
        *out_device = reinterpret_cast<inf_device*>(handle);
    });
}

INF_API inf_status inf_device_destroy(inf_device* device) {
    return guard("inf_device_destroy", [&] {
        if (device == nullptr) {
            return;
        }
        // The object dies here, outside the registry lock, unless buffers still hold it.
        HandleRegistry::instance().remove(reinterpret_cast<std::uintptr_t>(device), HandleKind::device, "device");
    });
}

INF_API inf_status inf_device_query(inf_device* device, inf_device_info* out_info) {
    return guard("inf_device_query", [&] {
        const auto object = api::find_device(device, "device");
        api::check_versioned(out_info, "out_info", "inf_device_info");
        inf_device_info info{};
        object->info(info);
        api::write_versioned(out_info, info);
    });
}

INF_API inf_status inf_device_synchronize(inf_device* device) {
    return guard("inf_device_synchronize", [&] { api::find_device(device, "device")->synchronize(); });
}

}  // extern "C"
