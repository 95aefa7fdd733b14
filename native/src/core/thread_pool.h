// A fixed pool of worker threads for the CPU kernels. parallel_for splits [0, n) into chunks handed
// out dynamically; the calling thread works too. No allocation per call; an exception thrown by a
// task stops the remaining chunks and is rethrown on the caller. Calls are serialised (one
// parallel_for at a time per pool); a parallel_for from inside a task runs inline on that thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace inf {

class ThreadPool {
public:
    // threads: total participants including the caller (>= 1).
    explicit ThreadPool(int threads);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int threads() const noexcept { return threads_; }

    // Calls fn(begin, end, thread) over chunks of [0, n), thread in [0, threads()). grain: items per
    // chunk (0: about n / (4 * threads)).
    template <class Fn>
    void parallel_for(std::int64_t n, Fn&& fn, std::int64_t grain = 0) {
        using F = std::remove_reference_t<Fn>;
        run(n, grain, [](void* context, std::int64_t begin, std::int64_t end, int thread) {
            (*static_cast<F*>(context))(begin, end, thread);
        }, const_cast<void*>(static_cast<const void*>(&fn)));
    }

    // The process-wide pool: hardware_concurrency threads, or INFINITE_THREADS. Never destroyed.
    static ThreadPool& instance();

private:
    using Task = void (*)(void* context, std::int64_t begin, std::int64_t end, int thread);
    void run(std::int64_t n, std::int64_t grain, Task task, void* context);
    void work(int thread) noexcept;
    void worker_main(int thread);

    int threads_;
    std::vector<std::thread> workers_;
    std::mutex call_mutex_;  // one parallel_for at a time
    std::mutex mutex_;
    std::condition_variable wake_;
    std::condition_variable done_;
    std::uint64_t generation_ = 0;
    int active_ = 0;  // workers still inside the current generation
    bool stop_ = false;
    // The current job.
    Task task_ = nullptr;
    void* context_ = nullptr;
    std::int64_t n_ = 0;
    std::int64_t grain_ = 1;
    std::atomic<std::int64_t> next_{0};
    std::atomic<bool> failed_{false};
    std::exception_ptr error_;
    std::mutex error_mutex_;
};

}  // namespace inf
