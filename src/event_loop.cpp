#include <sock/error.hpp>
#include <sock/event_loop.hpp>

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <stdexcept>

namespace sock SOCK_API {

namespace {

thread_local event_loop* this_thread_loop = nullptr;

std::error_code last_error() noexcept { return {errno, std::system_category()}; }

constexpr std::size_t initial_batch = 256;
constexpr std::size_t max_batch = 16384;

}  // namespace

event_loop::event_loop() : owner_(std::this_thread::get_id()), fired_(initial_batch), now_(clock::now()) {
    if (this_thread_loop != nullptr)
        throw std::logic_error("event_loop: this thread already has a loop (one loop per thread)");
    epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) throw_error(last_error(), "epoll_create1");
    wakefd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wakefd_ < 0) {
        const auto ec = last_error();
        ::close(epfd_);
        throw_error(ec, "eventfd");
    }
    ::epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = wakefd_;
    if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev) < 0) {
        const auto ec = last_error();
        ::close(wakefd_);
        ::close(epfd_);
        throw_error(ec, "epoll_ctl add eventfd");
    }
    this_thread_loop = this;
}

event_loop::~event_loop() {
    ::close(wakefd_);
    ::close(epfd_);
    if (this_thread_loop == this) this_thread_loop = nullptr;
}

event_loop* event_loop::current() noexcept { return this_thread_loop; }

void event_loop::check_thread(const char* what) const noexcept {
    if (!in_loop_thread()) {
        std::fprintf(stderr, "sock: event_loop::%s called from a thread that does not own the loop\n",
                     what);
        std::abort();
    }
}

// -- descriptors ------------------------------------------------------------------------------

void event_loop::add(int fd, std::uint32_t events, io_handler& h) {
    check_thread("add");
    ::epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    if (::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) < 0)
        throw_error(last_error(), "epoll_ctl add fd " + std::to_string(fd));
    if (static_cast<std::size_t>(fd) >= handlers_.size())
        handlers_.resize(std::max<std::size_t>(static_cast<std::size_t>(fd) + 1, handlers_.size() * 2),
                         nullptr);
    handlers_[static_cast<std::size_t>(fd)] = &h;
    ++watched_;
}

void event_loop::modify(int fd, std::uint32_t events) {
    check_thread("modify");
    ::epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    if (::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) < 0)
        throw_error(last_error(), "epoll_ctl modify fd " + std::to_string(fd));
}

void event_loop::rebind(int fd, io_handler& h) noexcept {
    handlers_[static_cast<std::size_t>(fd)] = &h;
}

void event_loop::forget(int fd) noexcept {
    check_thread("forget");
    // A later event of this batch for fd finds nullptr here and is skipped, as in Redis's ae.
    if (fd >= 0 && static_cast<std::size_t>(fd) < handlers_.size() &&
        handlers_[static_cast<std::size_t>(fd)] != nullptr) {
        handlers_[static_cast<std::size_t>(fd)] = nullptr;
        --watched_;
    }
}

void event_loop::remove(int fd) noexcept {
    forget(fd);
    ::epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr);
}

void event_loop::cancel_all() {
    check_thread("cancel_all");
    // on_cancel may forget its own fd (or others), so re-read the slot each time.
    for (std::size_t fd = 0; fd < handlers_.size(); ++fd) {
        if (auto* h = handlers_[fd]) h->on_cancel();
    }
    if (canceling_timers_) return;
    // Collect first: a callback may resume a coroutine that starts, cancels or destroys other
    // timers. cancel() clears a timer's entry, so a timer cancelled (as it must be before it
    // is destroyed) or restarted meanwhile is skipped, and timers started meanwhile are not in
    // the batch at all.
    canceling_.reserve(armed_);  // the only allocation; push_back below cannot throw
    auto collect = [&](timer* t) {
        if (t->on_cancel == nullptr) return;
        t->cancel_index_ = static_cast<std::uint32_t>(canceling_.size());
        canceling_.push_back(t);
    };
    for (std::size_t i = 0; i < lists_used_; ++i)
        for (timer* t = lists_[i].head; t != nullptr; t = t->next_) collect(t);
    for (timer* t : heap_) collect(t);
    struct batch_end {
        event_loop& loop;
        ~batch_end() {
            // Also reached when a callback throws: the rest of the batch stays armed.
            for (timer* t : loop.canceling_)
                if (t != nullptr) t->cancel_index_ = timer::unplaced;
            loop.canceling_.clear();
            loop.canceling_timers_ = false;
        }
    } end{*this};
    canceling_timers_ = true;
    for (std::size_t i = 0; i < canceling_.size(); ++i) {
        timer* t = canceling_[i];
        if (t == nullptr) continue;
        cancel(*t);
        t->on_cancel(*t);
    }
}

// -- timers -----------------------------------------------------------------------------------

// Total order: deadline, then start order, so that equal deadlines fire in start order
// whichever structure holds them.
bool event_loop::before(const timer& a, const timer& b) noexcept {
    return a.deadline_ < b.deadline_ || (a.deadline_ == b.deadline_ && a.seq_ < b.seq_);
}

detail::timer_list* event_loop::list_for(std::chrono::nanoseconds after) noexcept {
    for (std::size_t i = 0; i < lists_used_; ++i)
        if (lists_[i].duration == after) return &lists_[i];
    if (lists_used_ < max_lists) {
        auto& l = lists_[lists_used_++];
        l.duration = after;
        return &l;
    }
    // Every list has a duration: recycle the empty one started least recently, which keeps the
    // recurring durations' lists; with none empty, the heap takes this timer.
    detail::timer_list* pick = nullptr;
    for (auto& l : lists_)
        if (l.head == nullptr && (pick == nullptr || l.last_start < pick->last_start)) pick = &l;
    if (pick != nullptr) pick->duration = after;
    return pick;
}

void event_loop::start(timer& t, std::chrono::nanoseconds after) {
    check_thread("start");
    cancel(t);
    t.deadline_ = now_ + after;
    t.seq_ = next_seq_++;
    if (auto* list = list_for(after)) {
        // now_ never goes back, so appending keeps the list in deadline order.
        t.list_ = list;
        t.next_ = nullptr;
        t.prev_ = list->tail;
        (list->tail != nullptr ? list->tail->next_ : list->head) = &t;
        list->tail = &t;
        list->last_start = t.seq_;
    } else {
        heap_push(t);
    }
    ++armed_;
}

void event_loop::cancel(timer& t) noexcept {
    if (auto* list = t.list_) {
        (t.prev_ != nullptr ? t.prev_->next_ : list->head) = t.next_;
        (t.next_ != nullptr ? t.next_->prev_ : list->tail) = t.prev_;
        t.prev_ = t.next_ = nullptr;
        t.list_ = nullptr;
    } else if (t.heap_index_ != timer::unplaced) {
        heap_erase(t.heap_index_);
    } else {
        return;
    }
    --armed_;
    if (t.cancel_index_ != timer::unplaced) {
        canceling_[t.cancel_index_] = nullptr;
        t.cancel_index_ = timer::unplaced;
    }
}

event_loop::timer_usage event_loop::timers() const noexcept {
    timer_usage u;
    u.armed = armed_;
    for (std::size_t i = 0; i < lists_used_; ++i) u.lists += lists_[i].head != nullptr;
    u.heap_capacity = heap_.capacity();
    return u;
}

// The heap: heap_[i]'s children are 2i+1 and 2i+2; each timer knows its index, so cancel is
// O(log n) with no search.

void event_loop::heap_place(timer* t, std::uint32_t i) noexcept {
    heap_[i] = t;
    t->heap_index_ = i;
}

void event_loop::heap_up(std::uint32_t i) noexcept {
    timer* t = heap_[i];
    while (i > 0) {
        const std::uint32_t parent = (i - 1) / 2;
        if (!before(*t, *heap_[parent])) break;
        heap_place(heap_[parent], i);
        i = parent;
    }
    heap_place(t, i);
}

void event_loop::heap_down(std::uint32_t i) noexcept {
    timer* t = heap_[i];
    const auto n = static_cast<std::uint32_t>(heap_.size());
    for (;;) {
        std::uint32_t child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && before(*heap_[child + 1], *heap_[child])) ++child;
        if (!before(*heap_[child], *t)) break;
        heap_place(heap_[child], i);
        i = child;
    }
    heap_place(t, i);
}

void event_loop::heap_push(timer& t) {
    heap_.push_back(&t);
    heap_up(static_cast<std::uint32_t>(heap_.size() - 1));
}

void event_loop::heap_erase(std::uint32_t i) noexcept {
    heap_[i]->heap_index_ = timer::unplaced;
    timer* last = heap_.back();
    heap_.pop_back();
    if (i < heap_.size()) {
        heap_place(last, i);
        heap_down(i);
        heap_up(last->heap_index_);
    } else if (heap_.empty() && heap_.capacity() > 1024) {
        // A burst of one-off durations is over: give its memory back.
        std::vector<timer*>().swap(heap_);
    }
}

timer* event_loop::earliest() const noexcept {
    timer* first = heap_.empty() ? nullptr : heap_.front();
    for (std::size_t i = 0; i < lists_used_; ++i) {
        timer* head = lists_[i].head;
        if (head != nullptr && (first == nullptr || before(*head, *first))) first = head;
    }
    return first;
}

int event_loop::next_timeout_ms() const noexcept {
    const timer* first = earliest();
    if (first == nullptr) return -1;
    const auto left = first->deadline_ - clock::now();
    if (left <= clock::duration::zero()) return 0;
    // Round up: waking a little late is harmless, waking early just spins once more.
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
    return ms > 1'000'000 ? 1'000'000 : static_cast<int>(ms);
}

void event_loop::fire_timers() {
    // Earliest deadline first over all timers, even when the loop is late and timers of several
    // durations are due at once. A callback may start or cancel timers: pick each time afresh.
    // Timers started during this pass wait for the next one, or a timer that restarts itself
    // with no delay would keep the loop here for ever, away from I/O, posted work and stop().
    const std::uint64_t pass = next_seq_;
    for (;;) {
        timer* due = earliest();
        // A timer started during the pass is never before an older due one unless its own
        // deadline is earlier, so stopping here leaves nothing due out of order.
        if (due == nullptr || due->deadline_ > now_ || due->seq_ >= pass) return;
        cancel(*due);
        if (due->fire != nullptr) due->fire(*due);
    }
}

// -- running ----------------------------------------------------------------------------------

void event_loop::wake() noexcept {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wakefd_, &one, sizeof one);
}

void event_loop::post(std::function<void()> fn) {
    {
        std::lock_guard lock(posted_mutex_);
        posted_.push_back(std::move(fn));
    }
    wake();
}

void event_loop::stop() {
    {
        std::lock_guard lock(posted_mutex_);
        stop_requested_ = true;
    }
    wake();
}

void event_loop::run_posted() {
    std::uint64_t count = 0;
    [[maybe_unused]] auto n = ::read(wakefd_, &count, sizeof count);
    {
        std::lock_guard lock(posted_mutex_);
        running_.swap(posted_);
        if (stop_requested_) {
            stopping_ = true;
            stop_requested_ = false;
        }
    }
    std::size_t i = 0;
    try {
        for (; i < running_.size(); ++i) running_[i]();
    } catch (...) {
        // Each function runs once: drop the ones that ran (the thrower too) and put the rest
        // back ahead of anything posted since, then wake the next run() for them.
        {
            std::lock_guard lock(posted_mutex_);
            const auto rest = running_.begin() + static_cast<std::ptrdiff_t>(i) + 1;
            posted_.insert(posted_.begin(), std::make_move_iterator(rest),
                           std::make_move_iterator(running_.end()));
        }
        running_.clear();
        wake();
        throw;
    }
    running_.clear();
}

void event_loop::run() {
    check_thread("run");
    stopping_ = false;
    while (!stopping_) {
        const int n = ::epoll_wait(epfd_, fired_.data(), static_cast<int>(fired_.size()),
                                   next_timeout_ms());
        if (n < 0 && errno != EINTR) throw_error(last_error(), "epoll_wait");
        now_ = clock::now();
        bool woken = false;
        for (int i = 0; i < n; ++i) {
            const auto& ev = fired_[static_cast<std::size_t>(i)];
            if (ev.data.fd == wakefd_) {
                woken = true;
                continue;
            }
            const auto fd = static_cast<std::size_t>(ev.data.fd);
            if (fd < handlers_.size() && handlers_[fd] != nullptr) handlers_[fd]->on_io(ev.events);
        }
        if (static_cast<std::size_t>(n) == fired_.size() && fired_.size() < max_batch)
            fired_.resize(fired_.size() * 2);
        fire_timers();
        // Posted work last, so that a function that throws leaves no fetched event undispatched
        // (edge-triggered events would not come again).
        if (woken) run_posted();
    }
}

}  // namespace sock
