#pragma once

// chat-server's policy, without sockets: who hears a line (everyone else in the room, on
// whichever thread they live) and how much may wait for a client that does not read.

#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace chat {

/// One line as a client sent it, "\n" included; shared by every client it goes to.
using message = std::shared_ptr<const std::string>;

/// The longest line a client may send, "\n" included (the stream reader's 64 KiB limit).
inline constexpr std::size_t max_line = 64 * 1024;

/// What a client is sent, in one line, when its line passes max_line; then it is closed.
std::string line_too_long_error();

/// The lines waiting for one client, and the bound on them: bytes the server holds for the
/// client, queued or being sent, never pass `bound`. A push that would is refused and drops
/// everything: the client is too slow and is let go.
class backlog {
public:
    explicit backlog(std::size_t bound) : bound_(bound) {}

    /// Queues m; false when that would pass the bound: then nothing is queued, any longer.
    bool push(message m);
    /// Queues m whatever the bound (the server's own last words to a client).
    void push_unbounded(message m);
    /// Takes the oldest queued line for sending: it counts as in flight until drained().
    message pop();
    /// What pop() handed out has been sent.
    void drained() noexcept { in_flight_ = 0; }

    bool empty() const noexcept { return queue_.empty(); }
    /// Bytes queued and in flight.
    std::size_t bytes() const noexcept { return queued_ + in_flight_; }
    std::size_t bound() const noexcept { return bound_; }
    /// A push was refused: the client is being let go.
    bool overflowed() const noexcept { return overflowed_; }

private:
    std::size_t bound_;
    std::deque<message> queue_;
    std::size_t queued_ = 0;
    std::size_t in_flight_ = 0;
    bool overflowed_ = false;
};

/// The clients who hear each other, spread over threads (event loops). Each member has a
/// home: the thread it lives on, named by a key, with a function that runs work there
/// (event_loop::post). A member is only ever touched on its home thread: a line said on
/// another thread reaches it through its home's inbox and one posted flush, so a burst of
/// lines costs one post per home, not one per line and member. Thread-safe.
class room {
public:
    using post_fn = std::function<void(std::function<void()>)>;

    /// A client in the room, as the room sees it.
    class member {
    public:
        /// A line said by someone else, on this member's home thread. It must not join, leave
        /// or say anything (the room is walking its members); queue and schedule instead.
        virtual void deliver(const message& m) = 0;

    protected:
        member() = default;
        ~member() = default;
        member(const member&) = delete;
        member& operator=(const member&) = delete;

    private:
        friend class room;
        struct home;
        std::shared_ptr<home> home_;
    };

    room() = default;
    room(const room&) = delete;
    room& operator=(const room&) = delete;

    /// Adds m, from its home thread: `key` names that thread (its event_loop), `post` runs a
    /// function there and must stay callable while any member of that home is in the room.
    void join(member& m, const void* key, post_fn post);
    /// Takes m out, from its home thread; nothing is delivered to it afterwards. Idempotent.
    void leave(member& m);
    /// Delivers line to every member but `from`, in the order each sender says its lines:
    /// at once to those at from's home, through their inbox to the others. From from's home.
    void say(const member& from, const message& line);

    /// Members now, over every home.
    std::size_t size() const;
    /// Homes with members now.
    std::size_t homes() const;

private:
    mutable std::mutex mutex_;
    std::vector<std::shared_ptr<member::home>> homes_;  // those with members
    std::size_t members_ = 0;
};

}  // namespace chat
