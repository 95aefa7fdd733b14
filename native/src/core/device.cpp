#include "core/device.h"

#include "core/log.h"

namespace inf {

Device::Device(Backend& backend, std::int32_t ordinal)
    : backend_(backend), ordinal_(ordinal), label_(device_label(backend.kind(), ordinal)) {
    check_ordinal(backend, ordinal);
    log(INF_LOG_LEVEL_DEBUG, "device ", label_, " opened");
}

Device::~Device() {
    log(INF_LOG_LEVEL_DEBUG, "device ", label_, " released");
}

}  // namespace inf
