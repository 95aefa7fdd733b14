// inf_get_live_objects: counts of live handles and buffer bytes, and its argument checks.
#include <cstring>
#include <vector>

#include "test_util.h"

using inf_test::live_objects;

TEST(LiveObjects, CountsFollowCreateAndDestroy) {
    const inf_live_objects start = live_objects();
    inf_device* first = nullptr;
    inf_device* second = nullptr;
    ASSERT_OK(inf_device_create(INF_DEVICE_KIND_CPU, 0, &first));
    ASSERT_OK(inf_device_create(INF_DEVICE_KIND_CPU, 0, &second));
    std::vector<inf_buffer*> buffers(3, nullptr);
    ASSERT_OK(inf_buffer_create(first, 100, &buffers[0]));
    ASSERT_OK(inf_buffer_create(first, 200, &buffers[1]));
    ASSERT_OK(inf_buffer_create(second, 300, &buffers[2]));

    inf_live_objects now = live_objects();
    EXPECT_EQ(now.devices, start.devices + 2);
    EXPECT_EQ(now.buffers, start.buffers + 3);
    EXPECT_EQ(now.buffer_bytes, start.buffer_bytes + 600);

    ASSERT_OK(inf_buffer_destroy(buffers[1]));
    ASSERT_OK(inf_device_destroy(first));  // its buffer 0 stays alive
    now = live_objects();
    EXPECT_EQ(now.devices, start.devices + 1);
    EXPECT_EQ(now.buffers, start.buffers + 2);
    EXPECT_EQ(now.buffer_bytes, start.buffer_bytes + 400);

    ASSERT_OK(inf_buffer_destroy(buffers[0]));
    ASSERT_OK(inf_buffer_destroy(buffers[2]));
    ASSERT_OK(inf_device_destroy(second));
    now = live_objects();
    EXPECT_EQ(now.devices, start.devices);
    EXPECT_EQ(now.buffers, start.buffers);
    EXPECT_EQ(now.buffer_bytes, start.buffer_bytes);
}

TEST(LiveObjects, FailedCallsLeaveNothingBehind) {
    const inf_live_objects start = live_objects();
    inf_device* device = nullptr;
    inf_buffer* buffer = nullptr;
    EXPECT_STATUS(INF_STATUS_OUT_OF_RANGE, inf_device_create(INF_DEVICE_KIND_CPU, 2, &device));
    ASSERT_OK(inf_device_create(INF_DEVICE_KIND_CPU, 0, &device));
    EXPECT_STATUS(INF_STATUS_INVALID_ARGUMENT, inf_buffer_create(device, 0, &buffer));
    EXPECT_STATUS(INF_STATUS_OUT_OF_MEMORY, inf_buffer_create(device, UINT64_MAX, &buffer));
    EXPECT_OK(inf_device_destroy(device));
    EXPECT_STATUS(INF_STATUS_INVALID_HANDLE, inf_device_destroy(device));
    const inf_live_objects now = live_objects();
    EXPECT_EQ(now.devices, start.devices);
    EXPECT_EQ(now.buffers, start.buffers);
    EXPECT_EQ(now.buffer_bytes, start.buffer_bytes);
}

TEST(LiveObjects, Errors) {
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "inf_get_live_objects: out_objects is null", inf_get_live_objects(nullptr));
    inf_live_objects objects;
    std::memset(&objects, 0x5A, sizeof objects);
    objects.size = 16;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT,
                 "inf_get_live_objects: out_objects->size (16) is smaller than sizeof(inf_live_objects) (32)",
                 inf_get_live_objects(&objects));
    EXPECT_EQ(objects.size, 16U);
    EXPECT_EQ(objects.devices, 0x5A5A5A5A5A5A5A5A);  // nothing written
}
