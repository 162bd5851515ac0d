#include "ares_loop.hpp"

#include <sock/error.hpp>

#include <netdb.h>
#include <sys/epoll.h>

#include <chrono>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

namespace bench {

namespace {

void library_init() {
    static std::once_flag once;
    static int status = ARES_SUCCESS;
    std::call_once(once, [] { status = ares_library_init(ARES_LIB_INIT_ALL); });
    if (status != ARES_SUCCESS)
        throw std::runtime_error(std::string("ares_library_init: ") + ares_strerror(status));
}

int ares_flags(int ai_flags) {
    int out = 0;
    if (ai_flags & AI_CANONNAME) out |= ARES_AI_CANONNAME;
    if (ai_flags & AI_NUMERICHOST) out |= ARES_AI_NUMERICHOST;
    if (ai_flags & AI_PASSIVE) out |= ARES_AI_PASSIVE;
    if (ai_flags & AI_NUMERICSERV) out |= ARES_AI_NUMERICSERV;
    if (ai_flags & AI_V4MAPPED) out |= ARES_AI_V4MAPPED;
    if (ai_flags & AI_ALL) out |= ARES_AI_ALL;
    if (ai_flags & AI_ADDRCONFIG) out |= ARES_AI_ADDRCONFIG;
    return out;
}

// The EAI_* code sock::gaierror carries for a c-ares status, as glibc would have answered.
int eai_code(int status) {
    switch (status) {
    case ARES_ENOTFOUND:
    case ARES_ENONAME:
        return EAI_NONAME;
    case ARES_ENODATA:
        return EAI_NODATA;
    case ARES_ETIMEOUT:
    case ARES_ECONNREFUSED:
    case ARES_ESERVFAIL:
        return EAI_AGAIN;
    case ARES_ENOMEM:
        return EAI_MEMORY;
    case ARES_EBADFAMILY:
        return EAI_FAMILY;
    case ARES_ESERVICE:
        return EAI_SERVICE;
    case ARES_EBADFLAGS:
        return EAI_BADFLAGS;
    default:
        return EAI_FAIL;
    }
}

}  // namespace

// ---- the channel's sockets on the loop ----

struct ares_resolver::watch final : sock::io_handler {
    ares_resolver* owner;
    int fd;
    std::uint32_t events;
    watch(ares_resolver& o, int f, std::uint32_t e) : owner(&o), fd(f), events(e) {}
    void on_io(std::uint32_t ev) override {
        // ares_process_fd may close this socket, and the state callback then destroys this
        // watch: nothing of *this is touched after the call.
        ares_resolver* const r = owner;
        const int s = fd;
        const bool error = (ev & (EPOLLERR | EPOLLHUP)) != 0;
        const ares_socket_t rd = (ev & EPOLLIN) || error ? s : ARES_SOCKET_BAD;
        const ares_socket_t wr = (ev & EPOLLOUT) || error ? s : ARES_SOCKET_BAD;
        ares_process_fd(r->channel_, rd, wr);
        r->update_timer();
    }
};

ares_resolver::ares_resolver(sock::event_loop& loop, const ares_options* options, int optmask)
    : loop_(loop) {
    library_init();
    ares_options opts{};
    if (options != nullptr) opts = *options;
    opts.sock_state_cb = &ares_resolver::on_sock_state;
    opts.sock_state_cb_data = this;
    const int status = ares_init_options(&channel_, &opts, optmask | ARES_OPT_SOCK_STATE_CB);
    if (status != ARES_SUCCESS)
        throw std::runtime_error(std::string("ares_init_options: ") + ares_strerror(status));
    alarm_.owner = this;
    alarm_.fire = [](sock::timer& t) {
        auto* r = static_cast<alarm&>(t).owner;
        ares_process_fd(r->channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);  // expiries only
        r->update_timer();
    };
}

ares_resolver::~ares_resolver() {
    loop_.cancel(alarm_);
    // Closes the channel's sockets (the state callback takes them off the loop) and ends what
    // is still pending with ARES_EDESTRUCTION.
    ares_destroy(channel_);
}

void ares_resolver::on_sock_state(void* data, ares_socket_t fd, int readable, int writable) noexcept {
    auto& self = *static_cast<ares_resolver*>(data);
    auto it = self.watches_.find(fd);
    if (!readable && !writable) {  // c-ares is about to close fd
        if (it != self.watches_.end()) {
            self.loop_.remove(fd);
            self.watches_.erase(it);
        }
        return;
    }
    // Level-triggered: ares_process_fd reads what it wants, and what is left wakes us again.
    const std::uint32_t events = (readable ? EPOLLIN : 0u) | (writable ? EPOLLOUT : 0u);
    try {
        if (it != self.watches_.end()) {
            if (it->second->events != events) {
                self.loop_.modify(fd, events);
                it->second->events = events;
            }
            return;
        }
        auto w = std::make_unique<watch>(self, fd, events);
        self.loop_.add(fd, events, *w);
        self.watches_.emplace(fd, std::move(w));
    } catch (...) {
        // No way to tell c-ares; the query's timeout will end it.
    }
}

void ares_resolver::update_timer() noexcept {
    timeval tv{};
    if (ares_timeout(channel_, nullptr, &tv) == nullptr) {
        loop_.cancel(alarm_);
        return;
    }
    const auto after = std::chrono::seconds(tv.tv_sec) + std::chrono::microseconds(tv.tv_usec);
    loop_.start(alarm_, after);
}

// ---- one look-up ----

struct ares_lookup::request {
    ares_lookup* awaiter;  // nullptr once the awaiter is gone
};

ares_lookup::ares_lookup(ares_resolver& r, std::string host, std::uint16_t port, sock::family fam,
                         sock::kind type, int flags)
    : resolver_(r), host_(std::move(host)), port_(port), family_(fam), type_(type), flags_(flags) {}

ares_lookup::~ares_lookup() {
    if (pending_ != nullptr) pending_->awaiter = nullptr;  // the callback frees it
}

bool ares_lookup::await_suspend(std::coroutine_handle<> h) {
    waiter_ = h;
    ares_addrinfo_hints hints{};
    hints.ai_family = static_cast<int>(family_);
    hints.ai_socktype = static_cast<int>(type_);
    hints.ai_flags = ares_flags(flags_) | ARES_AI_NUMERICSERV;
    const std::string service = std::to_string(port_);
    pending_ = new request{this};
    suspending_ = true;
    // Answers from /etc/hosts (and numeric hosts) come back inside this call.
    ares_getaddrinfo(resolver_.channel_, host_.c_str(), service.c_str(), &hints, &on_answer,
                     pending_);
    suspending_ = false;
    resolver_.update_timer();
    return !done_;
}

void ares_lookup::on_answer(void* arg, int status, int, ares_addrinfo* res) noexcept {
    auto* req = static_cast<request*>(arg);
    ares_lookup* self = req->awaiter;
    delete req;
    if (self == nullptr) {
        if (res != nullptr) ares_freeaddrinfo(res);
        return;
    }
    self->pending_ = nullptr;
    self->status_ = status;
    if (status == ARES_SUCCESS && res != nullptr) {
        try {
            bool first = true;
            for (auto* n = res->nodes; n != nullptr; n = n->ai_next) {
                std::string canon;
                if (first && (self->flags_ & AI_CANONNAME))
                    canon = res->cnames != nullptr ? res->cnames->name : self->host_;
                first = false;
                self->result_.push_back({static_cast<sock::family>(n->ai_family),
                                         static_cast<sock::kind>(n->ai_socktype), n->ai_protocol,
                                         std::move(canon),
                                         sock::address::from_native(n->ai_addr, n->ai_addrlen)});
            }
        } catch (...) {
            self->status_ = ARES_ENOMEM;
            self->result_.clear();
        }
    }
    if (res != nullptr) ares_freeaddrinfo(res);
    self->done_ = true;
    // ARES_EDESTRUCTION comes from ~ares_resolver: resuming there would run the task inside
    // a destructor, so the task stays suspended (the channel must outlive its look-ups).
    if (!self->suspending_ && status != ARES_EDESTRUCTION) self->waiter_.resume();
}

std::vector<sock::addrinfo> ares_lookup::await_resume() {
    if (status_ != ARES_SUCCESS) {
        if (status_ == ARES_ECANCELLED || status_ == ARES_EDESTRUCTION)
            sock::throw_error(std::make_error_code(std::errc::operation_canceled),
                              "getaddrinfo " + sock::address(host_, port_).to_string());
        throw sock::gaierror(eai_code(status_),
                             "getaddrinfo " + sock::address(host_, port_).to_string());
    }
    return std::move(result_);
}

}  // namespace bench
