// In-process communicators through the C ABI: ordering per (peer, tag), probe, zero-byte and oversized
// messages, timeouts, failed peers, a many-thread all-to-all, buffers, and the argument checks.
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "comm_test_util.h"

using inf_test::Comm;
using inf_test::comm_info;
using inf_test::make_endpoints;
using inf_test::make_group;
using inf_test::make_inproc;

namespace {

using Clock = std::chrono::steady_clock;

void send_text(inf_comm* comm, int32_t peer, int32_t tag, const std::string& text) {
    ASSERT_OK(inf_comm_send(comm, peer, tag, text.data(), text.size()));
}

std::string recv_text(inf_comm* comm, int32_t peer, int32_t tag) {
    char data[256] = {};
    uint64_t bytes = 0;
    EXPECT_OK(inf_comm_recv(comm, peer, tag, data, sizeof data, &bytes));
    return std::string(data, bytes);
}

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

TEST(CommInproc, StatusNamesOfTheCommunicatorStatuses) {
    EXPECT_STREQ(inf_status_name(INF_STATUS_TIMEOUT), "INF_STATUS_TIMEOUT");
    EXPECT_STREQ(inf_status_name(INF_STATUS_PEER_FAILED), "INF_STATUS_PEER_FAILED");
}

TEST(CommInproc, MessagesOfOnePeerAndTagArriveInOrder) {
    auto comms = make_endpoints(3);
    send_text(comms[0].get(), 1, 5, "first");
    send_text(comms[0].get(), 1, 6, "other tag");
    send_text(comms[2].get(), 1, 5, "other peer");
    send_text(comms[0].get(), 1, 5, "second");
    send_text(comms[0].get(), 1, 5, "third");

    // Any order across (peer, tag) pairs; the order sent within one.
    EXPECT_EQ(recv_text(comms[1].get(), 2, 5), "other peer");
    EXPECT_EQ(recv_text(comms[1].get(), 0, 5), "first");
    EXPECT_EQ(recv_text(comms[1].get(), 0, 6), "other tag");
    EXPECT_EQ(recv_text(comms[1].get(), 0, 5), "second");
    EXPECT_EQ(recv_text(comms[1].get(), 0, 5), "third");
}

TEST(CommInproc, SendToSelf) {
    auto comms = make_endpoints(2);
    send_text(comms[1].get(), 1, 0, "loop");
    EXPECT_EQ(recv_text(comms[1].get(), 1, 0), "loop");
}

TEST(CommInproc, ProbeLeavesTheMessageQueued) {
    auto comms = make_endpoints(2);
    send_text(comms[0].get(), 1, 3, "12345");
    uint64_t bytes = 0;
    ASSERT_OK(inf_comm_probe(comms[1].get(), 0, 3, &bytes));
    EXPECT_EQ(bytes, 5U);
    ASSERT_OK(inf_comm_probe(comms[1].get(), 0, 3, &bytes));
    EXPECT_EQ(bytes, 5U);
    EXPECT_EQ(recv_text(comms[1].get(), 0, 3), "12345");
}

TEST(CommInproc, ZeroByteMessages) {
    auto comms = make_endpoints(2);
    ASSERT_OK(inf_comm_send(comms[0].get(), 1, 0, nullptr, 0));
    ASSERT_OK(inf_comm_send(comms[0].get(), 1, 0, nullptr, 0));
    uint64_t bytes = 99;
    ASSERT_OK(inf_comm_probe(comms[1].get(), 0, 0, &bytes));
    EXPECT_EQ(bytes, 0U);
    bytes = 99;
    ASSERT_OK(inf_comm_recv(comms[1].get(), 0, 0, nullptr, 0, &bytes));
    EXPECT_EQ(bytes, 0U);
    char data[4];
    bytes = 99;
    ASSERT_OK(inf_comm_recv(comms[1].get(), 0, 0, data, sizeof data, &bytes));
    EXPECT_EQ(bytes, 0U);
}

TEST(CommInproc, CapacityTooSmallIsOutOfRangeAndTheMessageStaysQueued) {
    auto comms = make_endpoints(2);
    send_text(comms[0].get(), 1, 9, "0123456789");
    char small[4] = {};
    uint64_t bytes = 0;
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "is 10 bytes, more than capacity (4)",
                 inf_comm_recv(comms[1].get(), 0, 9, small, sizeof small, &bytes));
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "more than capacity (0)",
                 inf_comm_recv(comms[1].get(), 0, 9, nullptr, 0, &bytes));
    EXPECT_EQ(recv_text(comms[1].get(), 0, 9), "0123456789");
}

TEST(CommInproc, ReceiveAndProbeTimeOutNamingPeerTagAndWait) {
    auto comms = make_endpoints(2);
    ASSERT_OK(inf_comm_set_timeout(comms[1].get(), 50));
    char data[8];
    uint64_t bytes = 0;
    auto start = Clock::now();
    EXPECT_ERROR(INF_STATUS_TIMEOUT, "no message from peer 0 with tag 7 within 50 ms",
                 inf_comm_recv(comms[1].get(), 0, 7, data, sizeof data, &bytes));
    EXPECT_GE(seconds_since(start), 0.045);
    EXPECT_LT(seconds_since(start), 5.0);
    start = Clock::now();
    EXPECT_ERROR(INF_STATUS_TIMEOUT, "no message from peer 0 with tag 8 within 50 ms",
                 inf_comm_probe(comms[1].get(), 0, 8, &bytes));
    EXPECT_GE(seconds_since(start), 0.045);
    // A message sent afterwards is still delivered.
    send_text(comms[0].get(), 1, 7, "late");
    EXPECT_EQ(recv_text(comms[1].get(), 0, 7), "late");
}

TEST(CommInproc, WaitingReceiverGetsAMessageSentLater) {
    auto comms = make_endpoints(2);
    std::string got;
    std::thread receiver([&] { got = recv_text(comms[1].get(), 0, 1); });
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    send_text(comms[0].get(), 1, 1, "wake");
    receiver.join();
    EXPECT_EQ(got, "wake");
}

TEST(CommInproc, DestroyedPeerFailsAtOnceAfterItsQueuedMessages) {
    auto comms = make_endpoints(3);
    send_text(comms[1].get(), 0, 2, "before");
    comms[1].reset();

    const auto start = Clock::now();  // default timeout 30 s: PEER_FAILED must not wait for it
    EXPECT_EQ(recv_text(comms[0].get(), 1, 2), "before");
    char data[8];
    uint64_t bytes = 0;
    EXPECT_ERROR(INF_STATUS_PEER_FAILED, "peer 1 is gone", inf_comm_recv(comms[0].get(), 1, 2, data, 8, &bytes));
    EXPECT_ERROR(INF_STATUS_PEER_FAILED, "peer 1 is gone", inf_comm_probe(comms[0].get(), 1, 2, &bytes));
    EXPECT_ERROR(INF_STATUS_PEER_FAILED, "peer 1 is gone", inf_comm_send(comms[0].get(), 1, 2, "x", 1));
    EXPECT_LT(seconds_since(start), 1.0);
    // The others are unaffected.
    send_text(comms[0].get(), 2, 2, "still here");
    EXPECT_EQ(recv_text(comms[2].get(), 0, 2), "still here");
}

TEST(CommInproc, WaitingReceiverIsWokenWhenThePeerGoes) {
    auto comms = make_endpoints(2);
    inf_status status = INF_STATUS_OK;
    std::string message;
    const auto start = Clock::now();
    std::thread receiver([&] {
        uint64_t bytes = 0;
        status = inf_comm_probe(comms[0].get(), 1, 4, &bytes);
        message = inf_last_error();
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    comms[1].reset();
    receiver.join();
    EXPECT_EQ(inf_test::status_text(status), inf_test::status_text(INF_STATUS_PEER_FAILED)) << message;
    EXPECT_THAT(message, ::testing::HasSubstr("peer 1"));
    EXPECT_LT(seconds_since(start), 5.0);
}

TEST(CommInproc, MessagesToARankNotJoinedYetWaitForIt) {
    auto group = make_group(2);
    Comm first = make_inproc(group.get(), 0);
    send_text(first.get(), 1, 0, "early");
    Comm second = make_inproc(group.get(), 1);
    EXPECT_EQ(recv_text(second.get(), 0, 0), "early");
}

TEST(CommInproc, ARankJoinsOnceWhileAliveAndMayRejoinEmpty) {
    auto group = make_group(2);
    Comm first = make_inproc(group.get(), 0);
    Comm second = make_inproc(group.get(), 1);
    inf_comm* again = reinterpret_cast<inf_comm*>(1);
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "rank (1) already has a live endpoint",
                 inf_comm_create_inproc(group.get(), 1, &again));
    EXPECT_EQ(again, nullptr);

    send_text(first.get(), 1, 0, "for the old endpoint");
    second.reset();
    second = make_inproc(group.get(), 1);
    ASSERT_OK(inf_comm_set_timeout(second.get(), 20));
    char data[64];
    uint64_t bytes = 0;
    EXPECT_STATUS(INF_STATUS_TIMEOUT, inf_comm_recv(second.get(), 0, 0, data, sizeof data, &bytes));
    send_text(first.get(), 1, 0, "for the new one");
    EXPECT_EQ(recv_text(second.get(), 0, 0), "for the new one");
}

TEST(CommInproc, GroupHandleMayGoBeforeItsEndpoints) {
    const inf_live_objects start = inf_test::live_objects();
    auto group = make_group(2);
    Comm a = make_inproc(group.get(), 0);
    Comm b = make_inproc(group.get(), 1);
    inf_live_objects now = inf_test::live_objects();
    EXPECT_EQ(now.comm_groups, start.comm_groups + 1);
    EXPECT_EQ(now.comms, start.comms + 2);
    group.reset();
    send_text(a.get(), 1, 0, "after the group handle");
    EXPECT_EQ(recv_text(b.get(), 0, 0), "after the group handle");
    a.reset();
    b.reset();
    now = inf_test::live_objects();
    EXPECT_EQ(now.comm_groups, start.comm_groups);
    EXPECT_EQ(now.comms, start.comms);
}

TEST(CommInproc, InfoCountsBytesAndMessages) {
    auto comms = make_endpoints(2);
    ASSERT_OK(inf_comm_set_timeout(comms[0].get(), 1234));
    send_text(comms[0].get(), 1, 0, "abc");
    send_text(comms[0].get(), 1, 0, "defg");
    recv_text(comms[1].get(), 0, 0);
    const inf_comm_info sender = comm_info(comms[0].get());
    EXPECT_EQ(sender.kind, INF_COMM_KIND_INPROC);
    EXPECT_EQ(sender.rank, 0);
    EXPECT_EQ(sender.group_size, 2);
    EXPECT_EQ(sender.timeout_ms, 1234);
    EXPECT_EQ(sender.bytes_sent, 7U);
    EXPECT_EQ(sender.messages_sent, 2U);
    EXPECT_EQ(sender.messages_received, 0U);
    const inf_comm_info receiver = comm_info(comms[1].get());
    EXPECT_EQ(receiver.rank, 1);
    EXPECT_EQ(receiver.timeout_ms, 30000);
    EXPECT_EQ(receiver.bytes_received, 3U);
    EXPECT_EQ(receiver.messages_received, 1U);
}

// Every rank on its own thread sends to every rank (itself too) on several tags, then receives all of it;
// each message carries its sequence number and a checksum of its contents.
TEST(CommInproc, ManyThreadsAllToAll) {
    constexpr int32_t kRanks = 8;
    constexpr int32_t kTags = 3;
    constexpr int32_t kMessages = 60;
    auto comms = make_endpoints(kRanks);
    const auto payload = [](int32_t src, int32_t dst, int32_t tag, int32_t seq) {
        const std::size_t length = static_cast<std::size_t>((src * 131 + dst * 31 + tag * 7 + seq * 13) % 700);
        std::vector<unsigned char> bytes = inf_test::random_bytes(
            length + 16, static_cast<std::uint64_t>(((src * kRanks + dst) * kTags + tag) * kMessages + seq));
        std::memcpy(bytes.data(), &seq, sizeof seq);
        return bytes;
    };
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int32_t r = 0; r < kRanks; ++r) {
        threads.emplace_back([&, r] {
            inf_comm* comm = comms[static_cast<std::size_t>(r)].get();
            for (int32_t seq = 0; seq < kMessages; ++seq) {
                for (int32_t peer = 0; peer < kRanks; ++peer) {
                    for (int32_t tag = 0; tag < kTags; ++tag) {
                        const auto bytes = payload(r, peer, tag, seq);
                        if (inf_comm_send(comm, peer, tag, bytes.data(), bytes.size()) != INF_STATUS_OK) {
                            ++failures;
                        }
                    }
                }
            }
            std::vector<unsigned char> got(1024);
            // Receive in another order than sent: by tag descending, then peer.
            for (int32_t tag = kTags - 1; tag >= 0; --tag) {
                for (int32_t peer = kRanks - 1; peer >= 0; --peer) {
                    for (int32_t seq = 0; seq < kMessages; ++seq) {
                        uint64_t length = 0;
                        if (inf_comm_recv(comm, peer, tag, got.data(), got.size(), &length) != INF_STATUS_OK ||
                            payload(peer, r, tag, seq) !=
                                std::vector<unsigned char>(got.begin(), got.begin() + static_cast<long>(length))) {
                            ++failures;
                        }
                    }
                }
            }
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    EXPECT_EQ(failures.load(), 0);
    for (const auto& comm : comms) {
        const inf_comm_info info = comm_info(comm.get());
        EXPECT_EQ(info.messages_sent, static_cast<uint64_t>(kRanks * kTags * kMessages));
        EXPECT_EQ(info.messages_received, static_cast<uint64_t>(kRanks * kTags * kMessages));
    }
}

TEST(CommInproc, BuffersTravelWholeOrAtAnOffset) {
    auto comms = make_endpoints(2);
    auto device = inf_test::make_device();
    auto source = inf_test::make_buffer(device.get(), 64);
    auto target = inf_test::make_buffer(device.get(), 64);
    const auto bytes = inf_test::random_bytes(64, 3);
    ASSERT_OK(inf_buffer_write(source.get(), 0, bytes.data(), bytes.size()));
    ASSERT_OK(inf_comm_send_buffer(comms[0].get(), 1, 0, source.get(), 16, 32));
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "is 32 bytes, but bytes (31) were asked for",
                 inf_comm_recv_buffer(comms[1].get(), 0, 0, target.get(), 0, 31));
    ASSERT_OK(inf_comm_recv_buffer(comms[1].get(), 0, 0, target.get(), 8, 32));
    const auto got = inf_test::read_all(target.get());
    EXPECT_TRUE(std::equal(bytes.begin() + 16, bytes.begin() + 48, got.begin() + 8));

    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "offset (40) + bytes (32) exceeds buffer size (64)",
                 inf_comm_send_buffer(comms[0].get(), 1, 0, source.get(), 40, 32));
    EXPECT_ERROR(INF_STATUS_OUT_OF_RANGE, "offset (40) + bytes (32) exceeds buffer size (64)",
                 inf_comm_recv_buffer(comms[1].get(), 0, 0, target.get(), 40, 32));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "buffer is null", inf_comm_send_buffer(comms[0].get(), 1, 0, nullptr, 0, 0));
    EXPECT_ERROR(INF_STATUS_INVALID_HANDLE, "buffer",
                 inf_comm_recv_buffer(comms[1].get(), 0, 0, reinterpret_cast<inf_buffer*>(comms[0].get()), 0, 0));
}

TEST(CommInproc, BadArgumentsNameTheArgument) {
    auto comms = make_endpoints(2);
    inf_comm* comm = comms[0].get();
    char data[4] = {};
    uint64_t bytes = 0;

    inf_comm_group* group = nullptr;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "group_size (0) is outside 1 .. 1024", inf_comm_group_create(0, &group));
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "group_size (1025)", inf_comm_group_create(1025, &group));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "out_group is null", inf_comm_group_create(2, nullptr));
    auto owned = make_group(2);
    inf_comm* out = nullptr;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "rank (2) is not a rank of the group (0 .. 1)",
                 inf_comm_create_inproc(owned.get(), 2, &out));
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "rank (-1)", inf_comm_create_inproc(owned.get(), -1, &out));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "out_comm is null", inf_comm_create_inproc(owned.get(), 0, nullptr));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "group is null", inf_comm_create_inproc(nullptr, 0, &out));
    EXPECT_ERROR(INF_STATUS_INVALID_HANDLE, "group",
                 inf_comm_create_inproc(reinterpret_cast<inf_comm_group*>(comm), 0, &out));

    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "comm is null", inf_comm_send(nullptr, 1, 0, data, 1));
    EXPECT_ERROR(INF_STATUS_INVALID_HANDLE, "is a communicator group handle, not a communicator handle",
                 inf_comm_send(reinterpret_cast<inf_comm*>(owned.get()), 1, 0, data, 1));
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "peer (2) is not a rank of the group (0 .. 1)",
                 inf_comm_send(comm, 2, 0, data, 1));
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "peer (-1)", inf_comm_recv(comm, -1, 0, data, 4, &bytes));
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "peer (5)", inf_comm_probe(comm, 5, 0, &bytes));
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "tag (32768) is outside 0 .. 32767", inf_comm_send(comm, 1, 32768, data, 1));
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "tag (-1)", inf_comm_recv(comm, 1, -1, data, 4, &bytes));
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "tag (-3)", inf_comm_probe(comm, 1, -3, &bytes));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "data is null", inf_comm_send(comm, 1, 0, nullptr, 1));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "data is null", inf_comm_recv(comm, 1, 0, nullptr, 4, &bytes));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "out_bytes is null", inf_comm_recv(comm, 1, 0, data, 4, nullptr));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "out_bytes is null", inf_comm_probe(comm, 1, 0, nullptr));
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "timeout_ms (0) must be > 0", inf_comm_set_timeout(comm, 0));
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "timeout_ms (-5)", inf_comm_set_timeout(comm, -5));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "out_info is null", inf_comm_get_info(comm, nullptr));
    inf_comm_info info{};
    info.size = 4;
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "out_info->size (4) is smaller than sizeof(inf_comm_info)",
                 inf_comm_get_info(comm, &info));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "comm is null", inf_comm_get_info(nullptr, &info));
    EXPECT_OK(inf_comm_destroy(nullptr));
    EXPECT_OK(inf_comm_group_destroy(nullptr));

    // A destroyed handle is recognised, never dereferenced.
    inf_comm* gone = comms[1].release();
    ASSERT_OK(inf_comm_destroy(gone));
    EXPECT_ERROR(INF_STATUS_INVALID_HANDLE, "comm (", inf_comm_send(gone, 0, 0, data, 1));
    EXPECT_ERROR(INF_STATUS_INVALID_HANDLE, "comm (", inf_comm_destroy(gone));
    // No message was sent by any failed call.
    ASSERT_OK(inf_comm_set_timeout(comm, 10));
    EXPECT_STATUS(INF_STATUS_TIMEOUT, inf_comm_probe(comm, 0, 0, &bytes));
}

TEST(CommInproc, NcclNeedsACudaDevice) {
    auto comms = make_endpoints(1);
    auto device = inf_test::make_device();
    inf_comm* out = reinterpret_cast<inf_comm*>(1);
    EXPECT_ERROR(INF_STATUS_INVALID_ARGUMENT, "device (cpu:0) is not a CUDA device",
                 inf_comm_create_nccl(comms[0].get(), device.get(), &out));
    EXPECT_EQ(out, nullptr);
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "bootstrap is null", inf_comm_create_nccl(nullptr, device.get(), &out));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "device is null", inf_comm_create_nccl(comms[0].get(), nullptr, &out));
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "out_comm is null",
                 inf_comm_create_nccl(comms[0].get(), device.get(), nullptr));
}

// Runs under ctest with the fake CUDA plug-in (a CUDA device without a GPU); INFINITE_NCCL_LIBRARY names a
// missing file, so the NCCL loader's failure is seen whatever the machine has installed.
TEST(CommNcclFakeCuda, MissingNcclIsBackendUnavailableNamingTheLibrary) {
    if (std::getenv("INFINITE_CUDA_PLUGIN") == nullptr) {
        GTEST_SKIP() << "runs under ctest (comm_fake_cuda/ entries)";
    }
    const char* library = "/nonexistent/libnccl.so.2";
    ASSERT_EQ(setenv("INFINITE_NCCL_LIBRARY", library, 1), 0);  // read once, at the first NCCL creation
    auto comms = make_endpoints(1);
    auto device = inf_test::make_device(INF_DEVICE_KIND_CUDA, 0);
    ASSERT_NE(device, nullptr);
    inf_comm* out = reinterpret_cast<inf_comm*>(1);
    EXPECT_ERROR(INF_STATUS_BACKEND_UNAVAILABLE, std::string("NCCL communicator unavailable: cannot load ") + library,
                 inf_comm_create_nccl(comms[0].get(), device.get(), &out));
    EXPECT_THAT(std::string(inf_last_error()), ::testing::HasSubstr("libnccl.so.2"));
    EXPECT_EQ(out, nullptr);
}

// Device buffers of a backend the core cannot address travel staged through host memory.
TEST(CommNcclFakeCuda, DeviceBuffersAreStagedThroughHostMemory) {
    if (std::getenv("INFINITE_CUDA_PLUGIN") == nullptr) {
        GTEST_SKIP() << "runs under ctest (comm_fake_cuda/ entries)";
    }
    auto comms = make_endpoints(2);
    auto gpu = inf_test::make_device(INF_DEVICE_KIND_CUDA, 0);
    auto source = inf_test::make_buffer(gpu.get(), 256);
    auto target = inf_test::make_buffer(gpu.get(), 256);
    const auto bytes = inf_test::random_bytes(256, 11);
    ASSERT_OK(inf_buffer_write(source.get(), 0, bytes.data(), bytes.size()));
    ASSERT_OK(inf_comm_send_buffer(comms[0].get(), 1, 4, source.get(), 0, 256));
    ASSERT_OK(inf_comm_recv_buffer(comms[1].get(), 0, 4, target.get(), 0, 256));
    EXPECT_EQ(inf_test::read_all(target.get()), bytes);
}

TEST(CommMpiPlugin, AMissingPluginIsBackendUnavailableNamingTheLibrary) {
    // Read once, at the first MPI creation of the process; no other test of this executable creates one.
    ASSERT_EQ(setenv("INFINITE_MPI_PLUGIN", "/nonexistent/libinfinite_mpi.so", 1), 0);
    inf_comm* out = reinterpret_cast<inf_comm*>(1);
    EXPECT_ERROR(INF_STATUS_BACKEND_UNAVAILABLE,
                 "MPI communicator unavailable: cannot load libinfinite_mpi.so: /nonexistent/libinfinite_mpi.so",
                 inf_comm_create_mpi(&out));
    EXPECT_EQ(out, nullptr);
    EXPECT_ERROR(INF_STATUS_NULL_POINTER, "out_comm is null", inf_comm_create_mpi(nullptr));
}
