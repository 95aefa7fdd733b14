/* Compiled as C11 with -Wpedantic: also proves that infinite.h is plain C. */
#include "c_callers.h"

const char* c_status_name(int32_t status) { return inf_status_name((inf_status)status); }
inf_status c_set_log_level(int32_t level) { return inf_set_log_level((inf_log_level)level); }
inf_status c_backend_load(int32_t kind) { return inf_backend_load((inf_device_kind)kind); }
inf_status c_device_count(int32_t kind, int32_t* out_count) { return inf_device_count((inf_device_kind)kind, out_count); }
inf_status c_device_get_info(int32_t kind, int32_t ordinal, inf_device_info* out_info) {
    return inf_device_get_info((inf_device_kind)kind, ordinal, out_info);
}
inf_status c_device_create(int32_t kind, int32_t ordinal, inf_device** out_device) {
    return inf_device_create((inf_device_kind)kind, ordinal, out_device);
}
size_t c_sizeof_device_info(void) { return sizeof(inf_device_info); }
size_t c_sizeof_live_objects(void) { return sizeof(inf_live_objects); }
