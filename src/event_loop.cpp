#include <sock/error.hpp>
#include <sock/event_loop.hpp>

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace sock {

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
}

// -- timers -----------------------------------------------------------------------------------

void event_loop::start(timer& t, std::chrono::nanoseconds after) {
    check_thread("start");
    cancel(t);
    timer_list* list = nullptr;
    for (auto& l : timers_) {
        if (l->duration == after) {
            list = l.get();
            break;
        }
    }
    if (list == nullptr) {
        timers_.push_back(std::make_unique<timer_list>());
        list = timers_.back().get();
        list->duration = after;
    }
    t.deadline_ = now_ + after;
    t.list_ = list;
    t.next_ = nullptr;
    t.prev_ = list->tail;
    (list->tail != nullptr ? list->tail->next_ : list->head) = &t;
    list->tail = &t;
}

void event_loop::cancel(timer& t) noexcept {
    auto* list = t.list_;
    if (list == nullptr) return;
    (t.prev_ != nullptr ? t.prev_->next_ : list->head) = t.next_;
    (t.next_ != nullptr ? t.next_->prev_ : list->tail) = t.prev_;
    t.prev_ = t.next_ = nullptr;
    t.list_ = nullptr;
}

int event_loop::next_timeout_ms() const noexcept {
    bool any = false;
    clock::time_point first{};
    for (const auto& l : timers_) {
        if (l->head != nullptr && (!any || l->head->deadline_ < first)) {
            first = l->head->deadline_;
            any = true;
        }
    }
    if (!any) return -1;
    const auto left = first - clock::now();
    if (left <= clock::duration::zero()) return 0;
    // Round up: waking a little late is harmless, waking early just spins once more.
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
    return ms > 1'000'000 ? 1'000'000 : static_cast<int>(ms);
}

void event_loop::fire_timers() {
    // Earliest deadline first over all lists, even when the loop is late and timers of several
    // durations are due at once. A callback may start or cancel timers, and starting one of a
    // new duration grows timers_: pick each time afresh, holding no iterator across a callback.
    for (;;) {
        timer* due = nullptr;
        for (const auto& l : timers_) {
            timer* head = l->head;
            if (head != nullptr && head->deadline_ <= now_ &&
                (due == nullptr || head->deadline_ < due->deadline_))
                due = head;
        }
        if (due == nullptr) return;
        cancel(*due);
        if (due->fire != nullptr) due->fire(*due);
    }
}

// -- running ----------------------------------------------------------------------------------

void event_loop::post(std::function<void()> fn) {
    {
        std::lock_guard lock(posted_mutex_);
        posted_.push_back(std::move(fn));
    }
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wakefd_, &one, sizeof one);
}

void event_loop::stop() {
    {
        std::lock_guard lock(posted_mutex_);
        stop_requested_ = true;
    }
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wakefd_, &one, sizeof one);
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
    for (auto& fn : running_) fn();
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
        for (int i = 0; i < n; ++i) {
            const auto& ev = fired_[static_cast<std::size_t>(i)];
            if (ev.data.fd == wakefd_) {
                run_posted();
                continue;
            }
            const auto fd = static_cast<std::size_t>(ev.data.fd);
            if (fd < handlers_.size() && handlers_[fd] != nullptr) handlers_[fd]->on_io(ev.events);
        }
        fire_timers();
        if (static_cast<std::size_t>(n) == fired_.size() && fired_.size() < max_batch)
            fired_.resize(fired_.size() * 2);
    }
}

}  // namespace sock
