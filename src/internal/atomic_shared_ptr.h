// AtomicSharedPtr: the registry's published-snapshot pointer.
//
// std::atomic<std::shared_ptr<T>> (libstdc++ 12: a lock bit inside the control-block pointer)
// is what readers use. ThreadSanitizer does not understand that lock bit and reports every
// load/store pair as a race (a false positive), so TSan builds use a mutex instead: same
// semantics, instrumented synchronisation. Only the mechanism differs between the builds.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>

namespace cortex_connectors::internal {

#if defined(__SANITIZE_THREAD__)
template <class T>
class AtomicSharedPtr {
 public:
  std::shared_ptr<T> load() const {
    std::lock_guard lock(mutex_);
    return value_;
  }
  void store(std::shared_ptr<T> value) {
    std::lock_guard lock(mutex_);
    value_.swap(value);
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<T> value_;
};
#else
template <class T>
class AtomicSharedPtr {
 public:
  std::shared_ptr<T> load() const { return value_.load(std::memory_order_acquire); }
  void store(std::shared_ptr<T> value) {
    value_.store(std::move(value), std::memory_order_release);
  }

 private:
  std::atomic<std::shared_ptr<T> > value_;
};
#endif

}  // namespace cortex_connectors::internal
