// Parallel loops and a small thread pool, on std::thread only.
//   parallel_for(n, jobs, fn)  runs fn(i) for i in [0, n) on up to `jobs` threads
//   ThreadPool                 fixed workers, submit() tasks, wait() for all of them
#pragma once
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace iflame {

// The number of hardware threads (at least 1).
inline int hardware_jobs() {
  const unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? int(n) : 1;
}

// Runs fn(i) for every i in [0, n) on up to `jobs` threads, the calling thread being one of
// them (jobs <= 0: hardware_jobs()). Indices are handed out one at a time in increasing order,
// so uneven work (meshes of very different sizes) balances itself. fn must be safe to call
// concurrently for different i. The first exception fn throws stops handing out indices and is
// rethrown here once every thread has finished. If the system refuses to start a thread, the
// loop runs on the threads it has.
template <class Fn>
void parallel_for(size_t n, int jobs, Fn&& fn) {
  if (jobs <= 0) jobs = hardware_jobs();
  const size_t threads = std::min(size_t(jobs), n);
  if (threads <= 1) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto worker = [&] {
    while (!failed.load(std::memory_order_relaxed)) {
      const size_t i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= n) return;
      try {
        fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        failed.store(true, std::memory_order_relaxed);
        return;
      }
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (size_t t = 1; t < threads; ++t) {
    try {
      pool.emplace_back(worker);
    } catch (const std::system_error&) {
      break;  // out of threads: carry on with those we have
    }
  }
  worker();
  for (std::thread& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

// A fixed set of worker threads running submitted tasks in submission order (FIFO).
// wait() blocks until every task submitted so far has finished and rethrows the first
// exception a task threw (later ones are dropped). The destructor waits, then joins.
class ThreadPool {
 public:
  explicit ThreadPool(int threads = 0) {
    if (threads <= 0) threads = hardware_jobs();
    workers_.reserve(size_t(threads));
    for (int t = 0; t < threads; ++t) workers_.emplace_back([this] { work(); });
  }
  ~ThreadPool() {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      idle_.wait(lock, [this] { return tasks_.empty() && running_ == 0; });
      stopping_ = true;
    }
    wake_.notify_all();
    for (std::thread& t : workers_) t.join();
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return int(workers_.size()); }

  void submit(std::function<void()> task) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      tasks_.push_back(std::move(task));
    }
    wake_.notify_one();
  }

  void wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    idle_.wait(lock, [this] { return tasks_.empty() && running_ == 0; });
    if (error_) {
      std::exception_ptr e = std::exchange(error_, nullptr);
      std::rethrow_exception(e);
    }
  }

 private:
  void work() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
        if (tasks_.empty()) return;  // stopping, nothing left
        task = std::move(tasks_.front());
        tasks_.pop_front();
        ++running_;
      }
      std::exception_ptr e;
      try {
        task();
      } catch (...) {
        e = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (e && !error_) error_ = e;
        --running_;
        if (tasks_.empty() && running_ == 0) idle_.notify_all();
      }
    }
  }

  std::vector<std::thread> workers_;
  std::deque<std::function<void()>> tasks_;
  std::mutex mutex_;
  std::condition_variable wake_, idle_;
  size_t running_ = 0;
  bool stopping_ = false;
  std::exception_ptr error_;
};

}  // namespace iflame
