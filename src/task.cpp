#include <sock/task.hpp>

#include <sock/error.hpp>

#include <array>
#include <cstdio>
#include <new>
#include <stdexcept>
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

std::coroutine_handle<> promise_base::leave_set(promise_base& p) noexcept {
    auto* set = std::exchange(p.set, nullptr);
    if (set == nullptr) return {};
    (p.set_prev != nullptr ? p.set_prev->set_next : set->head_) = p.set_next;
    if (p.set_next != nullptr) p.set_next->set_prev = p.set_prev;
    p.set_prev = p.set_next = nullptr;
    if (--set->size_ != 0 || set->joiner_ == nullptr) return {};
    return set->joiner_->leave();
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
    std::coroutine_handle<> joiner;
    const auto destroyed = destroy_members(joiner);
    if (joiner) joiner.resume();
    return destroyed;
}

std::size_t task_set::destroy_members(std::coroutine_handle<>& joiner) noexcept {
    std::size_t destroyed = 0;
    // A destructor in a destroyed frame may end or destroy other members: take one at a time.
    while (head_ != nullptr) {
        auto h = head_->self;
        if (auto j = detail::promise_base::leave_set(*head_)) joiner = j;  // woken at the end
        h.destroy();
        ++destroyed;
    }
    return destroyed;
}

bool task_set::join_awaiter::suspend(std::coroutine_handle<> h, detail::cancel_state* cancel) {
    if (set_->joiner_ != nullptr)
        throw std::logic_error("sock::task_set::join: another task joins this set already");
    if (cancel != nullptr && cancel->requested) {
        cancel->requested = false;  // one cancellation fails one wait
        canceled_ = true;
        return false;
    }
    waiter_ = h;
    set_->joiner_ = this;
    if (cancel != nullptr) {
        cancel_ = cancel;
        cancel->set(&on_task_cancel, this);
    }
    return true;
}

std::coroutine_handle<> task_set::join_awaiter::leave() noexcept {
    if (set_->joiner_ == this) set_->joiner_ = nullptr;
    if (cancel_ != nullptr) std::exchange(cancel_, nullptr)->clear(this);
    return std::exchange(waiter_, {});
}

void task_set::join_awaiter::on_task_cancel(void* self) noexcept {
    auto& j = *static_cast<join_awaiter*>(self);
    std::exchange(j.cancel_, nullptr)->requested = false;
    j.canceled_ = true;
    j.leave().resume();
}

void task_set::join_awaiter::await_resume() const {
    if (canceled_) throw_error(std::make_error_code(std::errc::operation_canceled), "join");
}

}  // namespace sock
