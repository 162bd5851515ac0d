// chat-server's policy without sockets or threads: who hears a line, in what order, through
// which home's inbox, and when a client's backlog lets it go.

#include "chat/room.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace {

chat::message line(const std::string& text) { return std::make_shared<const std::string>(text); }

/// A home (thread) whose posted work the test runs when it likes.
struct fake_home {
    std::vector<std::function<void()>> posted;
    chat::room::post_fn post() {
        return [this](std::function<void()> fn) { posted.push_back(std::move(fn)); };
    }
    std::size_t run() {
        auto now = std::move(posted);
        posted.clear();
        for (auto& fn : now) fn();
        return now.size();
    }
};

struct listener final : chat::room::member {
    std::vector<std::string> heard;
    void deliver(const chat::message& m) override { heard.push_back(*m); }
};

TEST(Backlog, HoldsUpToTheBoundThenLetsGo) {
    chat::backlog b(10);
    EXPECT_TRUE(b.push(line("abcd\n")));
    EXPECT_TRUE(b.push(line("efgh\n")));
    EXPECT_EQ(b.bytes(), 10u);
    EXPECT_FALSE(b.overflowed());
    EXPECT_FALSE(b.push(line("i\n")));  // 12 > 10
    EXPECT_TRUE(b.overflowed());
    EXPECT_TRUE(b.empty());  // nothing more goes out
    EXPECT_EQ(b.bytes(), 0u);
    EXPECT_FALSE(b.push(line("j\n")));
}

TEST(Backlog, CountsWhatIsBeingSentUntilDrained) {
    chat::backlog b(10);
    ASSERT_TRUE(b.push(line("abcd\n")));
    ASSERT_TRUE(b.push(line("efgh\n")));
    EXPECT_EQ(*b.pop(), "abcd\n");
    EXPECT_EQ(*b.pop(), "efgh\n");
    EXPECT_EQ(b.pop(), nullptr);
    EXPECT_TRUE(b.empty());
    EXPECT_EQ(b.bytes(), 10u);  // in flight: the client has not taken them yet
    EXPECT_FALSE(b.push(line("x\n")));
    chat::backlog c(10);
    ASSERT_TRUE(c.push(line("abcd\n")));
    c.pop();
    c.drained();
    EXPECT_EQ(c.bytes(), 0u);
    EXPECT_TRUE(c.push(line("123456789\n")));
}

TEST(Backlog, LastWordsPassTheBound) {
    chat::backlog b(4);
    b.push_unbounded(line(chat::line_too_long_error()));
    EXPECT_FALSE(b.overflowed());
    EXPECT_EQ(*b.pop(), "error: line longer than 65536 bytes\n");
}

TEST(Room, EveryoneElseHearsInOrderAcrossHomes) {
    chat::room r;
    fake_home h1, h2;
    listener a, b, c;
    r.join(a, &h1, h1.post());
    r.join(b, &h1, h1.post());
    r.join(c, &h2, h2.post());
    EXPECT_EQ(r.size(), 3u);
    EXPECT_EQ(r.homes(), 2u);

    r.say(a, line("one\n"));
    r.say(a, line("two\n"));
    EXPECT_EQ(b.heard, (std::vector<std::string>{"one\n", "two\n"}));  // same home: at once
    EXPECT_TRUE(c.heard.empty());                                       // other home: posted
    EXPECT_EQ(h2.run(), 1u);  // one flush for the burst
    EXPECT_EQ(c.heard, (std::vector<std::string>{"one\n", "two\n"}));
    EXPECT_TRUE(a.heard.empty());  // never its own
    EXPECT_EQ(h1.run(), 0u);

    r.say(c, line("three\n"));
    EXPECT_EQ(h1.run(), 1u);
    EXPECT_EQ(a.heard, (std::vector<std::string>{"three\n"}));
    EXPECT_EQ(b.heard.back(), "three\n");
    EXPECT_EQ(c.heard.size(), 2u);
}

TEST(Room, WhoLeftHearsNothingAndAnEmptyHomeGetsNoPosts) {
    chat::room r;
    fake_home h1, h2;
    listener a, c;
    r.join(a, &h1, h1.post());
    r.join(c, &h2, h2.post());
    r.say(a, line("before\n"));
    r.leave(c);  // its home had a flush posted: it reaches no one
    r.leave(c);
    EXPECT_EQ(r.homes(), 1u);
    EXPECT_EQ(h2.run(), 1u);
    EXPECT_TRUE(c.heard.empty());
    r.say(a, line("after\n"));
    EXPECT_EQ(h2.run(), 0u);
    EXPECT_EQ(r.size(), 1u);
    r.say(c, line("not in the room\n"));
    EXPECT_TRUE(a.heard.empty());
}

}  // namespace
