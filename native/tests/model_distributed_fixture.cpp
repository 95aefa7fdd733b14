#include "model_distributed_fixture.h"

#include <algorithm>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <tuple>

namespace model_test {

namespace {

std::vector<std::int32_t> shuffled(std::int32_t count, std::uint32_t seed) {
    std::vector<std::int32_t> pages(static_cast<std::size_t>(count));
    std::iota(pages.begin(), pages.end(), 0);
    std::shuffle(pages.begin(), pages.end(), std::mt19937(seed));
    return pages;
}

std::int32_t pages_for(std::int32_t keys, std::int32_t page_size) { return (keys + page_size - 1) / page_size; }

template <class T>
const T* data_or_null(const std::vector<T>& v) {
    return v.empty() ? nullptr : v.data();
}

}  // namespace

void CommDeleter::operator()(inf_comm* comm) const { EXPECT_OK(inf_comm_destroy(comm)); }
void GroupDeleter::operator()(inf_comm_group* group) const { EXPECT_OK(inf_comm_group_destroy(group)); }

void RankPlan::bind(inf_comm* comm, std::int64_t step_id) {
    ex = {};
    ex.size = sizeof ex;
    ex.comm = comm;
    ex.step_id = step_id;
    ex.remote_parts = static_cast<std::int32_t>(remote_ranks.size());
    ex.remote_sequences = data_or_null(remote_sequences);
    ex.remote_ranks = data_or_null(remote_ranks);
    ex.remote_sends_kv = data_or_null(remote_sends_kv);
    ex.served_parts = static_cast<std::int32_t>(served_ranks.size());
    ex.served_ranks = data_or_null(served_ranks);
    ex.served_q_starts = served_q_starts.data();
    ex.served_positions = data_or_null(served_positions);
    ex.served_kv_lengths = data_or_null(served_kv_lengths);
    ex.served_page_starts = served_page_starts.data();
    ex.served_page_ids = data_or_null(served_page_ids);
    ex.served_page_positions = data_or_null(served_page_positions);
    ex.served_receives_kv = data_or_null(served_receives_kv);
    const bool any_kv = std::any_of(served_receives_kv.begin(), served_receives_kv.end(), [](std::int32_t f) { return f != 0; });
    ex.served_append_pages = any_kv ? served_append_pages.data() : nullptr;
    plan = {};
    plan.size = sizeof plan;
    plan.sequences = static_cast<std::int32_t>(kv_lengths.size());
    plan.tokens = static_cast<std::int32_t>(token_ids.size());
    plan.logit_rows = plan.tokens;
    plan.token_ids = data_or_null(token_ids);
    plan.positions = data_or_null(positions);
    plan.q_starts = q_starts.data();
    plan.kv_lengths = data_or_null(kv_lengths);
    plan.page_starts = page_starts.data();
    plan.page_ids = data_or_null(page_ids);
    plan.logit_tokens = data_or_null(logit_tokens);
    plan.page_positions = null_positions ? nullptr : data_or_null(page_positions);
    plan.exchange = &ex;
}

Cluster::Cluster(inf_device* device, int instances, const inf_page_pool_config& pool, std::int32_t timeout_ms,
                 std::uint32_t seed)
    : page_size_(pool.page_size) {
    inf_comm_group* group = nullptr;
    EXPECT_OK(inf_comm_group_create(instances, &group));
    group_.reset(group);
    for (int r = 0; r < instances; ++r) {
        inf_comm* comm = nullptr;
        EXPECT_OK(inf_comm_create_inproc(group, r, &comm));
        EXPECT_OK(inf_comm_set_timeout(comm, timeout_ms));
        comms_.emplace_back(comm);
        pools_.push_back(inf_test::make_pool(device, pool));
        free_.push_back(shuffled(pool.pages, seed + static_cast<std::uint32_t>(r)));
    }
    placed_.resize(static_cast<std::size_t>(instances));
}

std::int32_t Cluster::physical(int rank, int sequence, int page) {
    auto& placed = placed_[static_cast<std::size_t>(rank)];
    const auto key = std::make_pair(sequence, page);
    if (const auto it = placed.find(key); it != placed.end()) {
        return it->second;
    }
    auto& free = free_[static_cast<std::size_t>(rank)];
    EXPECT_FALSE(free.empty()) << "rank " << rank << " ran out of pages";
    const std::int32_t id = free.back();
    free.pop_back();
    placed[key] = id;
    return id;
}

std::vector<RankPlan> Cluster::plans(const std::vector<DistSequence>& sequences, const std::vector<DistFeed>& feeds,
                                     std::int64_t step_id, bool null_positions) {
    const int n = size();
    std::vector<RankPlan> out(static_cast<std::size_t>(n));
    // (home, peer rank, home's sequence index, feed, sends_kv) of every remote part.
    std::vector<std::tuple<int, int, int, int, int>> parts;
    for (std::size_t f = 0; f < feeds.size(); ++f) {
        const DistFeed& feed = feeds[f];
        const DistSequence& seq = sequences[static_cast<std::size_t>(feed.sequence)];
        RankPlan& home = out[static_cast<std::size_t>(seq.home)];
        const std::int32_t kv_length = feed.first + feed.count;
        const int local = static_cast<int>(home.kv_lengths.size());
        for (std::int32_t i = 0; i < feed.count; ++i) {
            home.logit_tokens.push_back(static_cast<std::int32_t>(home.token_ids.size()));
            home.token_ids.push_back(seq.tokens[static_cast<std::size_t>(feed.first + i)]);
            home.positions.push_back(feed.first + i);
        }
        home.q_starts.push_back(static_cast<std::int32_t>(home.token_ids.size()));
        home.kv_lengths.push_back(kv_length);
        home.feeds.push_back(static_cast<std::int32_t>(f));
        const std::int32_t pages = pages_for(kv_length, page_size_);
        for (std::int32_t i = 0; i < pages; ++i) {
            if (seq.owner[static_cast<std::size_t>(i)] == seq.home) {
                home.page_ids.push_back(physical(seq.home, feed.sequence, i));
                home.page_positions.push_back(i * page_size_);
            }
        }
        home.page_starts.push_back(static_cast<std::int32_t>(home.page_ids.size()));
        for (int peer = 0; peer < n; ++peer) {
            bool held = false;
            bool kv = false;
            for (std::int32_t i = 0; i < pages; ++i) {
                held = held || (peer != seq.home && seq.owner[static_cast<std::size_t>(i)] == peer);
            }
            for (std::int32_t p = feed.first; p < kv_length; ++p) {
                kv = kv || (peer != seq.home && seq.owner[static_cast<std::size_t>(p / page_size_)] == peer);
            }
            if (held) {
                parts.emplace_back(seq.home, peer, local, static_cast<int>(f), kv ? 1 : 0);
            }
        }
    }
    // Home side: by rank, then sequence; serving side: by home, then in the home's order (the same sort).
    std::sort(parts.begin(), parts.end());
    for (const auto& [h, peer, local, f, kv] : parts) {
        RankPlan& home = out[static_cast<std::size_t>(h)];
        home.remote_sequences.push_back(local);
        home.remote_ranks.push_back(peer);
        home.remote_sends_kv.push_back(kv);
    }
    std::stable_sort(parts.begin(), parts.end(), [](const auto& a, const auto& b) {
        return std::make_pair(std::get<1>(a), std::get<0>(a)) < std::make_pair(std::get<1>(b), std::get<0>(b));
    });
    for (const auto& [h, peer, local, f, kv] : parts) {
        const DistFeed& feed = feeds[static_cast<std::size_t>(f)];
        const DistSequence& seq = sequences[static_cast<std::size_t>(feed.sequence)];
        RankPlan& server = out[static_cast<std::size_t>(peer)];
        const std::int32_t kv_length = feed.first + feed.count;
        server.served_ranks.push_back(h);
        for (std::int32_t p = feed.first; p < kv_length; ++p) {
            server.served_positions.push_back(p);
            const bool here = seq.owner[static_cast<std::size_t>(p / page_size_)] == peer;
            server.served_append_pages.push_back(here ? physical(peer, feed.sequence, p / page_size_) : -1);
        }
        server.served_q_starts.push_back(static_cast<std::int32_t>(server.served_positions.size()));
        server.served_kv_lengths.push_back(kv_length);
        for (std::int32_t i = 0; i < pages_for(kv_length, page_size_); ++i) {
            if (seq.owner[static_cast<std::size_t>(i)] == peer) {
                server.served_page_ids.push_back(physical(peer, feed.sequence, i));
                server.served_page_positions.push_back(i * page_size_);
            }
        }
        server.served_page_starts.push_back(static_cast<std::int32_t>(server.served_page_ids.size()));
        server.served_receives_kv.push_back(kv);
    }
    for (int r = 0; r < n; ++r) {
        RankPlan& plan = out[static_cast<std::size_t>(r)];
        if (null_positions) {
            // Default positions are only right when the rank's entries of every sequence are pages 0, 1, ...
            bool prefix = true;
            for (std::size_t s = 0; s < plan.kv_lengths.size(); ++s) {
                for (std::int32_t j = plan.page_starts[s]; j < plan.page_starts[s + 1]; ++j) {
                    prefix = prefix && plan.page_positions[static_cast<std::size_t>(j)] == (j - plan.page_starts[s]) * page_size_;
                }
            }
            plan.null_positions = prefix;
        }
        plan.bind(comm(r), step_id);
    }
    return out;
}

std::vector<inf_status> Cluster::run(const std::vector<inf_model*>& models, std::vector<RankPlan>& plans,
                                     std::vector<std::vector<float>>& feed_logits, std::int32_t vocab,
                                     std::vector<std::string>* errors, const std::vector<bool>* run) {
    const int n = size();
    std::vector<inf_status> statuses(static_cast<std::size_t>(n), INF_STATUS_OK);
    std::vector<std::string> messages(static_cast<std::size_t>(n));
    std::vector<std::vector<float>> logits(static_cast<std::size_t>(n));
    returned_.assign(static_cast<std::size_t>(n), std::chrono::steady_clock::now());
    std::vector<std::thread> threads;
    for (int r = 0; r < n; ++r) {
        if (run != nullptr && !(*run)[static_cast<std::size_t>(r)]) {
            continue;
        }
        threads.emplace_back([&, r] {
            const auto i = static_cast<std::size_t>(r);
            RankPlan& p = plans[i];
            logits[i].assign(p.token_ids.size() * static_cast<std::size_t>(vocab), std::numeric_limits<float>::quiet_NaN());
            statuses[i] = inf_model_step(models[i], pool(r), &p.plan, logits[i].empty() ? nullptr : logits[i].data());
            returned_[i] = std::chrono::steady_clock::now();
            if (statuses[i] != INF_STATUS_OK) messages[i] = inf_last_error();
        });
    }
    for (auto& t : threads) t.join();
    std::size_t feeds = 0;
    for (const RankPlan& p : plans) feeds += p.feeds.size();
    feed_logits.assign(feeds, {});
    for (int r = 0; r < n; ++r) {
        const RankPlan& p = plans[static_cast<std::size_t>(r)];
        for (std::size_t s = 0; s < p.feeds.size(); ++s) {
            const auto begin = static_cast<std::ptrdiff_t>(p.q_starts[s]) * vocab;
            const auto end = static_cast<std::ptrdiff_t>(p.q_starts[s + 1]) * vocab;
            const auto& all = logits[static_cast<std::size_t>(r)];
            if (all.empty()) continue;
            feed_logits[static_cast<std::size_t>(p.feeds[s])].assign(all.begin() + begin, all.begin() + end);
        }
    }
    if (errors != nullptr) *errors = messages;
    return statuses;
}

SingleInstance::SingleInstance(inf_device* device, const inf_page_pool_config& pool, std::uint32_t seed)
    : pool_(inf_test::make_pool(device, pool)), page_size_(pool.page_size), shuffled_(shuffled(pool.pages, seed)) {}

inf_status SingleInstance::run(inf_model* model, const std::vector<DistSequence>& sequences,
                               const std::vector<DistFeed>& feeds, std::vector<std::vector<float>>& feed_logits,
                               std::int32_t vocab, const inf_sparse_step* sparse) {
    std::vector<SequenceStep> steps;
    const auto per_sequence = static_cast<std::int32_t>(shuffled_.size() / std::max<std::size_t>(1, sequences.size()));
    for (const DistFeed& feed : feeds) {
        SequenceStep s;
        const auto& tokens = sequences[static_cast<std::size_t>(feed.sequence)].tokens;
        s.tokens.assign(tokens.begin() + feed.first, tokens.begin() + feed.first + feed.count);
        s.first_position = feed.first;
        for (std::int32_t i = 0; i < pages_for(feed.first + feed.count, page_size_); ++i) {
            s.pages.push_back(shuffled_[static_cast<std::size_t>(feed.sequence * per_sequence + i)]);
        }
        steps.push_back(std::move(s));
    }
    std::vector<float> logits;
    const inf_status status = run_step(model, pool_.get(), steps, sparse, logits, vocab);
    feed_logits.clear();
    std::size_t row = 0;
    for (const DistFeed& feed : feeds) {
        const auto begin = static_cast<std::ptrdiff_t>(row * static_cast<std::size_t>(vocab));
        row += static_cast<std::size_t>(feed.count);
        feed_logits.emplace_back(logits.begin() + begin, logits.begin() + static_cast<std::ptrdiff_t>(row * static_cast<std::size_t>(vocab)));
    }
    return status;
}

std::int32_t argmax_row(const std::vector<float>& logits, std::int32_t row, std::int32_t vocab) {
    const auto begin = logits.begin() + static_cast<std::ptrdiff_t>(row) * vocab;
    return static_cast<std::int32_t>(std::max_element(begin, begin + vocab) - begin);
}

}  // namespace model_test
