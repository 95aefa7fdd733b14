/* Calls into the C ABI the way a C (or C#) caller can: with any int where the header says enum.
 * Implemented in C (c_callers.c) because C++ forbids enum values outside the enumerators' range, and
 * UBSan aborts on them; C allows them, so this is the only honest way to test the library's checks. */
#ifndef INFINITE_TESTS_C_CALLERS_H
#define INFINITE_TESTS_C_CALLERS_H

#include <stdint.h>

#include "infinite/infinite.h"

#ifdef __cplusplus
extern "C" {
#endif

const char* c_status_name(int32_t status);
inf_status c_set_log_level(int32_t level);
inf_status c_backend_load(int32_t kind);
inf_status c_device_count(int32_t kind, int32_t* out_count);
inf_status c_device_get_info(int32_t kind, int32_t ordinal, inf_device_info* out_info);
inf_status c_device_create(int32_t kind, int32_t ordinal, inf_device** out_device);

/* sizeof of the public structs as a C compiler lays them out (the C# bindings follow C layout). */
size_t c_sizeof_device_info(void);
size_t c_sizeof_live_objects(void);

#ifdef __cplusplus
}
#endif

#endif
