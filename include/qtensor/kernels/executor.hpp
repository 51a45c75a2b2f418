// qtensor/kernels/executor.hpp: how GEMV and GEMM spread one call over threads.
//
// A kernel cuts its work into `count` independent tasks and hands them to an
// executor. The default executor runs them one after the other on the calling
// thread; the caller may instead pass its own thread pool as a callable, or
// the small thread_pool below. The library keeps no threads and no state of
// its own: a pool lives exactly as long as the caller keeps it.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "qtensor/core/config.hpp"
#include "qtensor/core/error.hpp"

QTENSOR_BEGIN_NAMESPACE
namespace kernels {

class executor {
public:
    using task_fn = std::function<void(std::size_t)>;
    // Runs task(i) for every i in [0, count), on any threads, and returns
    // when all have finished.
    using run_fn = std::function<void(std::size_t count, const task_fn& task)>;

    // Single-threaded: tasks run in order on the calling thread.
    executor() = default;

    // `concurrency`: how many tasks `run` can execute at once (kernels cut
    // their work into about that many pieces).
    executor(std::size_t concurrency, run_fn run) : concurrency_(concurrency), run_(std::move(run)) {
        if (concurrency_ == 0) throw error("kernels::executor: concurrency must be at least 1");
        if (!run_) throw error("kernels::executor: the run function is empty");
    }

    std::size_t concurrency() const noexcept { return concurrency_; }

    void run(std::size_t count, const task_fn& task) const {
        if (!run_ || count == 1) {
            for (std::size_t i = 0; i < count; ++i) task(i);
            return;
        }
        if (count != 0) run_(count, task);
    }

private:
    std::size_t concurrency_ = 1;
    run_fn run_;
};

// `threads` threads in all: the thread that calls run() and threads - 1
// workers, started once and parked between calls. A decode step calls GEMV
// hundreds of times per token, so a call must cost microseconds: workers
// spin briefly on an atomic after each call (the next one usually follows at
// once) and only then sleep on a condition variable.
//
// Tasks are claimed one at a time from a shared counter, by the caller too, so
// uneven tasks balance and a worker that the OS has not scheduled yet never
// holds a call up: the caller takes its tasks. One run() at a time
// (concurrent callers wait for each other); a task must not call run() on its
// own pool. The first exception a task throws is rethrown by run() once every
// task has finished.
class thread_pool {
public:
    // Throws qtensor::error when the system cannot start all the threads (a
    // thread or memory limit); the workers already started are stopped first.
    explicit thread_pool(std::size_t threads) {
        if (threads == 0) throw error("kernels::thread_pool: needs at least 1 thread");
        try {
            workers_.reserve(threads - 1);
            for (std::size_t i = 0; i + 1 < threads; ++i) workers_.emplace_back([this] { work_loop(); });
        } catch (const std::exception& e) {
            const std::size_t started = workers_.size();
            stop_workers();
            throw error("kernels::thread_pool: cannot start " + std::to_string(threads) + " threads (" +
                        std::to_string(started + 1) + " running when the system refused another: " + e.what() +
                        ")");
        }
    }

    thread_pool(const thread_pool&) = delete;
    thread_pool& operator=(const thread_pool&) = delete;

    ~thread_pool() { stop_workers(); }

    std::size_t size() const noexcept { return workers_.size() + 1; }

    void run(std::size_t count, const executor::task_fn& task) {
        if (workers_.empty() || count <= 1) {
            for (std::size_t i = 0; i < count; ++i) task(i);
            return;
        }
        // The claim counter holds up to max_count tasks per round.
        for (std::size_t first = 0; first < count; first += max_count) {
            const std::size_t n = std::min(max_count, count - first);
            if (first == 0 && n == count) {
                run_round(n, task);
            } else {
                const executor::task_fn shifted = [&](std::size_t i) { task(first + i); };
                run_round(n, shifted);
            }
        }
    }

    // An executor that runs on this pool; the pool must outlive it.
    executor get_executor() {
        return executor(size(), [this](std::size_t count, const executor::task_fn& task) { run(count, task); });
    }

private:
    // state_: round number | task count | next unclaimed task, in one atomic
    // so that a claim (a compare-exchange of the whole) can only succeed for
    // the round whose count and task it read.
    static constexpr int index_bits = 24;
    static constexpr int generation_shift = 2 * index_bits;
    static constexpr std::uint64_t index_mask = (std::uint64_t{1} << index_bits) - 1;
    static constexpr std::size_t max_count = index_mask;

    static std::uint64_t generation_of(std::uint64_t s) noexcept { return s >> generation_shift; }

    void stop_workers() noexcept {
        {
            std::lock_guard lock(mutex_);
            stop_.store(true, std::memory_order_relaxed);
            state_.fetch_add(std::uint64_t{1} << generation_shift, std::memory_order_release);
        }
        wake_.notify_all();
        for (auto& w : workers_) w.join();
        workers_.clear();
    }

    void run_round(std::size_t count, const executor::task_fn& task) {
        std::lock_guard call(call_mutex_);
        task_ = &task;
        error_ = nullptr;
        done_.store(0, std::memory_order_relaxed);
        std::uint64_t generation;
        {
            std::lock_guard lock(mutex_);
            generation = generation_of(state_.load(std::memory_order_relaxed)) + 1;
            state_.store((generation << generation_shift) | (static_cast<std::uint64_t>(count) << index_bits),
                         std::memory_order_release);
        }
        wake_.notify_all();
        take_tasks(generation);
        if (!spin_until([&] { return done_.load(std::memory_order_acquire) == count; })) {
            std::unique_lock lock(mutex_);
            done_cv_.wait(lock, [&] { return done_.load(std::memory_order_acquire) == count; });
        }
        if (error_) std::rethrow_exception(error_);
    }

    // About 50 microseconds of polling before a thread goes to sleep.
    template <class Pred>
    static bool spin_until(Pred&& ready) {
        for (int i = 0; i < 4096; ++i) {
            if (ready()) return true;
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#else
            std::this_thread::yield();
#endif
        }
        return ready();
    }

    // Claims and runs tasks of round `generation` until none is left.
    void take_tasks(std::uint64_t generation) {
        std::uint64_t s = state_.load(std::memory_order_acquire);
        for (;;) {
            const std::uint64_t count = (s >> index_bits) & index_mask, i = s & index_mask;
            if ((s >> generation_shift) != (generation & (~std::uint64_t{0} >> generation_shift)) || i >= count) return;
            if (!state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire))
                continue;
            // The round cannot end before this task is done, so task_ is this round's.
            try {
                (*task_)(static_cast<std::size_t>(i));
            } catch (...) {
                std::lock_guard lock(mutex_);
                if (!error_) error_ = std::current_exception();
            }
            if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == count) {
                std::lock_guard lock(mutex_);
                done_cv_.notify_one();
            }
            s = state_.load(std::memory_order_acquire);
        }
    }

    void work_loop() {
        std::uint64_t seen = 0;
        for (;;) {
            const auto changed = [&] {
                return generation_of(state_.load(std::memory_order_acquire)) != seen ||
                       stop_.load(std::memory_order_relaxed);
            };
            if (!spin_until(changed)) {
                std::unique_lock lock(mutex_);
                wake_.wait(lock, changed);
            }
            if (stop_.load(std::memory_order_relaxed)) return;
            seen = generation_of(state_.load(std::memory_order_acquire));
            take_tasks(seen);
        }
    }

    std::vector<std::thread> workers_;
    std::mutex call_mutex_; // one run() at a time
    std::mutex mutex_;      // guards sleeping, waking and error_
    std::condition_variable wake_, done_cv_;
    std::atomic<std::uint64_t> state_{0};
    std::atomic<std::size_t> done_{0};
    std::atomic<bool> stop_{false};
    const executor::task_fn* task_ = nullptr;
    std::exception_ptr error_;
};

} // namespace kernels
QTENSOR_END_NAMESPACE
