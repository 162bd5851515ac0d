#include <sock/task.hpp>

#include <array>
#include <cstdio>
#include <new>
#include <vector>

namespace sock SOCK_API {
namespace detail {

namespace {

// Size classes of 128 bytes up to 8 KiB; bigger frames go straight to operator new.
constexpr std::size_t granule = 128;
constexpr std::size_t classes = 64;
// Each list keeps at most this many frames, so a burst does not pin memory for ever.
constexpr std::size_t max_cached = 4096;

struct free_lists {
    std::array<std::vector<void*>, classes> lists;
    ~free_lists();
};

thread_local free_lists pool;
// Set once this thread's pool is destroyed: a frame freed later (a task with static or
// thread_local storage destroyed at exit) goes straight back to operator delete.
// Trivially destructible, so it stays readable until the thread's very end.
thread_local bool pool_gone = false;

free_lists::~free_lists() {
    pool_gone = true;
    for (auto& l : lists)
        for (void* p : l) ::operator delete(p);
}

std::size_t class_of(std::size_t size) noexcept { return (size + granule - 1) / granule; }

}  // namespace

#if defined(__SANITIZE_ADDRESS__)
#define SOCK_NO_FRAME_POOL 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SOCK_NO_FRAME_POOL 1
#endif
#endif

void* allocate_frame(std::size_t size) {
    const auto c = class_of(size);
#ifdef SOCK_NO_FRAME_POOL
    // Under ASan every frame is its own allocation, so a use after free is caught.
    if (c < classes) return ::operator new(size);
#endif
    if (c >= classes || pool_gone) return ::operator new(size);
    auto& list = pool.lists[c];
    if (!list.empty()) {
        void* p = list.back();
        list.pop_back();
        return p;
    }
    return ::operator new(c * granule);
}

void free_frame(void* p, std::size_t size) noexcept {
    const auto c = class_of(size);
    if (c >= classes || pool_gone) {
        ::operator delete(p);
        return;
    }
#ifdef SOCK_NO_FRAME_POOL
    ::operator delete(p);
    return;
#endif
    auto& list = pool.lists[c];
    if (list.size() < max_cached) {
        try {
            list.push_back(p);
            return;
        } catch (const std::bad_alloc&) {
        }
    }
    ::operator delete(p);
}

void promise_base::leave_set(promise_base& p) noexcept {
    auto* set = std::exchange(p.set, nullptr);
    if (set == nullptr) return;
    (p.set_prev != nullptr ? p.set_prev->set_next : set->head_) = p.set_next;
    if (p.set_next != nullptr) p.set_next->set_prev = p.set_prev;
    p.set_prev = p.set_next = nullptr;
    --set->size_;
}

void promise_base::report(done_fn fn, void* ctx, std::exception_ptr ex) noexcept {
    if (fn != nullptr) {
        fn(ctx, std::move(ex));
        return;
    }
    if (!ex) return;
    try {
        std::rethrow_exception(ex);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "sock: spawned task failed: %s\n", e.what());
    } catch (...) {
        std::fprintf(stderr, "sock: spawned task failed with a non-standard exception\n");
    }
}

}  // namespace detail
}  // namespace sock

namespace sock SOCK_API {

void task_set::cancel_all() noexcept {
    // A woken task may end (leaving the set), spawn more, or end whoever owns this set and so
    // the set itself (when_all's): mark who is here first, then wake those still present one
    // at a time, and stop as soon as the set is gone.
    for (auto* p = head_; p != nullptr; p = p->set_next) p->own_cancel.requested = true;
    bool alive = true;
    bool* const outer = std::exchange(alive_, &alive);
    for (bool woke = true; woke;) {
        woke = false;
        for (auto* p = head_; p != nullptr; p = p->set_next) {
            if (p->own_cancel.wake != nullptr && p->own_cancel.requested) {
                p->own_cancel.request();
                if (!alive) {
                    if (outer != nullptr) *outer = false;
                    return;
                }
                woke = true;
                break;  // the list may have changed
            }
        }
    }
    alive_ = outer;
}

std::size_t task_set::destroy_all() noexcept {
    std::size_t destroyed = 0;
    // A destructor in a destroyed frame may end or destroy other members: take one at a time.
    while (head_ != nullptr) {
        auto h = head_->self;
        detail::promise_base::leave_set(*head_);
        h.destroy();
        ++destroyed;
    }
    return destroyed;
}

}  // namespace sock
