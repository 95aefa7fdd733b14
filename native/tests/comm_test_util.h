// Helpers of the communicator tests: owning wrappers for groups and endpoints, and a group of N in-process
// endpoints in one call.
#pragma once

#include <memory>
#include <vector>

#include "test_util.h"

namespace inf_test {

struct GroupDeleter {
    void operator()(inf_comm_group* group) const { EXPECT_OK(inf_comm_group_destroy(group)); }
};
struct CommDeleter {
    void operator()(inf_comm* comm) const { EXPECT_OK(inf_comm_destroy(comm)); }
};
using Group = std::unique_ptr<inf_comm_group, GroupDeleter>;
using Comm = std::unique_ptr<inf_comm, CommDeleter>;

inline Group make_group(int32_t size) {
    inf_comm_group* group = nullptr;
    EXPECT_OK(inf_comm_group_create(size, &group));
    return Group(group);
}

inline Comm make_inproc(inf_comm_group* group, int32_t rank) {
    inf_comm* comm = nullptr;
    EXPECT_OK(inf_comm_create_inproc(group, rank, &comm));
    return Comm(comm);
}

// Endpoints 0 .. size-1 of one group; the group handle itself is released at once (the endpoints keep it).
inline std::vector<Comm> make_endpoints(int32_t size) {
    Group group = make_group(size);
    std::vector<Comm> comms;
    for (int32_t r = 0; r < size; ++r) {
        comms.push_back(make_inproc(group.get(), r));
    }
    return comms;
}

inline inf_comm_info comm_info(const inf_comm* comm) {
    inf_comm_info info{};
    info.size = sizeof info;
    EXPECT_OK(inf_comm_get_info(comm, &info));
    return info;
}

}  // namespace inf_test
