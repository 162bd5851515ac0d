#include "chat/room.hpp"

#include <algorithm>
#include <utility>

namespace chat {

std::string line_too_long_error() {
    return "error: line longer than " + std::to_string(max_line) + " bytes\n";
}

// -- backlog ----------------------------------------------------------------------------------

bool backlog::push(message m) {
    if (overflowed_) return false;
    if (m->size() > bound_ - std::min(bound_, bytes())) {
        overflowed_ = true;
        queue_.clear();
        queued_ = 0;
        return false;
    }
    push_unbounded(std::move(m));
    return true;
}

void backlog::push_unbounded(message m) {
    queued_ += m->size();
    queue_.push_back(std::move(m));
}

message backlog::pop() {
    if (queue_.empty()) return nullptr;
    message m = std::move(queue_.front());
    queue_.pop_front();
    queued_ -= m->size();
    in_flight_ += m->size();
    return m;
}

// -- room -------------------------------------------------------------------------------------

// The members living on one thread. `members` changes only on that thread (under the room's
// mutex, which other threads hold while they look at the list of homes, never at members);
// the inbox is where other threads leave lines, under its own mutex.
struct room::member::home : std::enable_shared_from_this<home> {
    const void* key;
    post_fn post;
    std::vector<member*> members;

    std::mutex inbox_mutex;
    std::vector<message> inbox;
    bool flush_posted = false;
    std::vector<message> batch;  // the home thread's: the inbox taken out, kept for its capacity

    home(const void* k, post_fn p) : key(k), post(std::move(p)) {}

    // From another thread, under the room's mutex: this home has members, so its thread and
    // what `post` reaches are alive.
    void enqueue(const message& m) {
        bool first = false;
        {
            const std::lock_guard lock(inbox_mutex);
            inbox.push_back(m);
            first = !std::exchange(flush_posted, true);
        }
        if (first) post([self = shared_from_this()] { self->flush(); });
    }

    // On the home thread: every line left since the last flush, to whoever is here now.
    void flush() {
        {
            const std::lock_guard lock(inbox_mutex);
            batch.swap(inbox);
            flush_posted = false;
        }
        for (const auto& m : batch)
            for (member* to : members) to->deliver(m);
        batch.clear();
    }
};

void room::join(member& m, const void* key, post_fn post) {
    if (m.home_) return;
    const std::lock_guard lock(mutex_);
    auto it = std::find_if(homes_.begin(), homes_.end(), [key](const auto& h) { return h->key == key; });
    if (it == homes_.end()) {
        homes_.push_back(std::make_shared<member::home>(key, std::move(post)));
        it = homes_.end() - 1;
    }
    (*it)->members.push_back(&m);
    m.home_ = *it;
    ++members_;
}

void room::leave(member& m) {
    if (!m.home_) return;
    const std::lock_guard lock(mutex_);
    auto& list = m.home_->members;
    list.erase(std::find(list.begin(), list.end(), &m));
    // A home without members leaves the list, so that no thread posts to a loop that may be
    // gone; lines already in its inbox are flushed to nobody.
    if (list.empty()) homes_.erase(std::find(homes_.begin(), homes_.end(), m.home_));
    m.home_.reset();
    --members_;
}

void room::say(const member& from, const message& line) {
    member::home* const own = from.home_.get();
    if (own == nullptr) return;
    {
        const std::lock_guard lock(mutex_);
        for (const auto& h : homes_)
            if (h.get() != own) h->enqueue(line);
    }
    // The home thread is ours: its member list cannot change under us (deliver joins and
    // leaves nothing).
    for (member* to : own->members)
        if (to != &from) to->deliver(line);
}

std::size_t room::size() const {
    const std::lock_guard lock(mutex_);
    return members_;
}

std::size_t room::homes() const {
    const std::lock_guard lock(mutex_);
    return homes_.size();
}

}  // namespace chat
