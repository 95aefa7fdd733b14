// A cluster of in-process instances for the distributed forward step: one page pool and one communicator per
// instance, a shared model, and plans built from a placement (which rank holds each page of each sequence).
// Steps run on one std::thread per instance, concurrently, with the same step_id, as the engine runs them.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "model_fixture.h"

namespace model_test {

// A sequence spread over instances: owner[i] is the rank that holds logical page i (keys i * page_size ..).
struct DistSequence {
    std::int32_t home = 0;
    std::vector<std::int32_t> owner;
    std::vector<std::int32_t> tokens;  // every token it feeds over the run
};

// One sequence's share of a step: tokens first .. first + count - 1.
struct DistFeed {
    std::int32_t sequence = 0;
    std::int32_t first = 0;
    std::int32_t count = 0;
};

// Every array of one instance's plan, and the structs pointing at them.
struct RankPlan {
    std::vector<std::int32_t> token_ids, positions, q_starts{0}, kv_lengths, page_starts{0}, page_ids, page_positions,
        logit_tokens;
    std::vector<std::int32_t> remote_sequences, remote_ranks, remote_sends_kv;
    std::vector<std::int32_t> served_ranks, served_q_starts{0}, served_positions, served_kv_lengths, served_page_starts{0},
        served_page_ids, served_page_positions, served_receives_kv, served_append_pages;
    std::vector<std::int32_t> feeds;  // the feed of each of the plan's sequences
    bool null_positions = false;      // pass page_positions = null (entries must then be 0, 1, 2, ... pages)
    inf_step_exchange ex{};
    inf_step_plan plan{};
    // Points plan and ex at the vectors (call after any change to them).
    void bind(inf_comm* comm, std::int64_t step_id);
};

struct CommDeleter {
    void operator()(inf_comm* comm) const;
};
struct GroupDeleter {
    void operator()(inf_comm_group* group) const;
};

class Cluster {
public:
    Cluster(inf_device* device, int instances, const inf_page_pool_config& pool, std::int32_t timeout_ms,
            std::uint32_t seed);

    int size() const { return static_cast<int>(pools_.size()); }
    inf_page_pool* pool(int rank) const { return pools_[static_cast<std::size_t>(rank)].get(); }
    inf_comm* comm(int rank) const { return comms_[static_cast<std::size_t>(rank)].get(); }
    void destroy_comm(int rank) { comms_[static_cast<std::size_t>(rank)].reset(); }

    // The plans of one step (one per rank). null_positions: ranks whose tables hold pages 0, 1, .. pass null.
    std::vector<RankPlan> plans(const std::vector<DistSequence>& sequences, const std::vector<DistFeed>& feeds,
                                std::int64_t step_id, bool null_positions = false);

    // Runs plans on every rank at once (models[r] on rank r; one thread each); statuses and error messages per
    // rank; logits per feed ([count][vocab], NaN-poisoned first). run[r] false: rank r does not call.
    std::vector<inf_status> run(const std::vector<inf_model*>& models, std::vector<RankPlan>& plans,
                                std::vector<std::vector<float>>& feed_logits, std::int32_t vocab,
                                std::vector<std::string>* errors = nullptr, const std::vector<bool>* run = nullptr);
    // When each rank's inf_model_step of the last run returned (how fast survivors of a failure give up).
    const std::vector<std::chrono::steady_clock::time_point>& returned() const { return returned_; }

private:
    std::int32_t physical(int rank, int sequence, int page);

    std::int32_t page_size_;
    std::unique_ptr<inf_comm_group, GroupDeleter> group_;
    std::vector<std::unique_ptr<inf_comm, CommDeleter>> comms_;
    std::vector<inf_test::Pool> pools_;
    std::vector<std::vector<std::int32_t>> free_;  // per rank: unused pool pages, shuffled
    std::vector<std::map<std::pair<int, int>, std::int32_t>> placed_;
    std::vector<std::chrono::steady_clock::time_point> returned_;
};

// The same steps on one instance with one big pool (default positions, no exchange): the reference.
class SingleInstance {
public:
    SingleInstance(inf_device* device, const inf_page_pool_config& pool, std::uint32_t seed);
    // Logits per feed ([count][vocab]).
    // sparse: the step's sparse fields (per-sequence arrays indexed by feed), or null.
    inf_status run(inf_model* model, const std::vector<DistSequence>& sequences, const std::vector<DistFeed>& feeds,
                   std::vector<std::vector<float>>& feed_logits, std::int32_t vocab, const inf_sparse_step* sparse = nullptr);

private:
    inf_test::Pool pool_;
    std::int32_t page_size_;
    std::vector<std::int32_t> shuffled_;
};

// Index of the largest logit of row r.
std::int32_t argmax_row(const std::vector<float>& logits, std::int32_t row, std::int32_t vocab);

}  // namespace model_test
