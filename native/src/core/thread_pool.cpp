#include "core/thread_pool.h"

#include <algorithm>
#include <cstdlib>
#include <string>

namespace inf {

namespace {
thread_local bool t_inside_pool = false;

int default_threads() {
    if (const char* env = std::getenv("INFINITE_THREADS")) {
        char* end = nullptr;
        const long value = std::strtol(env, &end, 10);
        if (end != env && value >= 1 && value <= 1024) {
            return static_cast<int>(value);
        }
    }
    const unsigned hardware = std::thread::hardware_concurrency();
    return hardware == 0 ? 1 : static_cast<int>(std::min(hardware, 1024U));
}
}  // namespace

ThreadPool::ThreadPool(int threads) : threads_(std::max(1, threads)) {
    workers_.reserve(static_cast<std::size_t>(threads_ - 1));
    for (int thread = 1; thread < threads_; ++thread) {
        workers_.emplace_back([this, thread] { worker_main(thread); });
    }
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
    }
    wake_.notify_all();
    for (auto& worker : workers_) {
        worker.join();
    }
}

ThreadPool& ThreadPool::instance() {
    static ThreadPool* pool = new ThreadPool(default_threads());  // leaky: no exit-order hazards
    return *pool;
}

void ThreadPool::work(int thread) noexcept {
    const bool was_inside = t_inside_pool;
    t_inside_pool = true;
    for (;;) {
        if (failed_.load(std::memory_order_relaxed)) {
            break;
        }
        const std::int64_t begin = next_.fetch_add(grain_, std::memory_order_relaxed);
        if (begin >= n_) {
            break;
        }
        const std::int64_t end = std::min(n_, begin + grain_);
        try {
            task_(context_, begin, end, thread);
        } catch (...) {
            std::lock_guard<std::mutex> lock(error_mutex_);
            if (!error_) {
                error_ = std::current_exception();
            }
            failed_.store(true, std::memory_order_relaxed);
        }
    }
    t_inside_pool = was_inside;
}

void ThreadPool::worker_main(int thread) {
    std::uint64_t seen = 0;
    for (;;) {
        {
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
            if (stop_) {
                return;
            }
            seen = generation_;
        }
        work(thread);
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (--active_ == 0) {
                done_.notify_one();
            }
        }
    }
}

void ThreadPool::run(std::int64_t n, std::int64_t grain, Task task, void* context) {
    if (n <= 0) {
        return;
    }
    if (grain <= 0) {
        grain = std::max<std::int64_t>(1, n / (4 * threads_));
    }
    // Single thread, one chunk, or a nested call: run inline.
    if (threads_ == 1 || n <= grain || t_inside_pool) {
        for (std::int64_t begin = 0; begin < n; begin += grain) {
            task(context, begin, std::min(n, begin + grain), 0);
        }
        return;
    }
    std::lock_guard<std::mutex> call_lock(call_mutex_);
    {
        std::lock_guard<std::mutex> lock(mutex_);
        task_ = task;
        context_ = context;
        n_ = n;
        grain_ = grain;
        next_.store(0, std::memory_order_relaxed);
        failed_.store(false, std::memory_order_relaxed);
        error_ = nullptr;
        active_ = threads_ - 1;
        ++generation_;
    }
    wake_.notify_all();
    work(0);
    {
        std::unique_lock<std::mutex> lock(mutex_);
        done_.wait(lock, [&] { return active_ == 0; });
    }
    if (error_) {
        std::exception_ptr error = error_;
        error_ = nullptr;
        std::rethrow_exception(error);
    }
}

}  // namespace inf
