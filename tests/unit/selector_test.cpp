// sock::selector: registering, modifying and unregistering descriptors, select() with and
// without a timeout, hang-ups and closed descriptors, and its errors. Socket pairs, pipes and
// 127.0.0.1 only; no duration is asserted.

#include "support.hpp"

#include <sock/selector.hpp>

#include <unistd.h>

#include <any>
#include <chrono>
#include <stdexcept>
#include <string>

namespace {

using sock::event;
using test::capture;

TEST(Selector, ReadReadinessWithData) {
    auto [a, b] = sock::socketpair();
    sock::selector sel;
    const auto& key = sel.register_(b, event::read, std::string("b side"));
    EXPECT_EQ(key.fd, b.fileno());
    EXPECT_EQ(key.events, event::read);
    EXPECT_TRUE(sel.select(std::chrono::nanoseconds(0)).empty());
    a.sendall("x");
    const auto ready = sel.select();
    ASSERT_EQ(ready.size(), 1u);
    EXPECT_EQ(ready[0].first, &key);
    EXPECT_EQ(ready[0].second, event::read);
    EXPECT_EQ(std::any_cast<std::string>(ready[0].first->data), "b side");
    EXPECT_EQ(b.recv(16), "x");
}

TEST(Selector, WriteIsReadyAtOnceAndOnlyWhatWasAskedIsReported) {
    auto [a, b] = sock::socketpair();
    sock::selector sel;
    sel.register_(a, event::read | event::write);
    auto ready = sel.select(std::chrono::milliseconds(0));
    ASSERT_EQ(ready.size(), 1u);
    EXPECT_EQ(ready[0].second, event::write);
    b.sendall("y");
    ready = sel.select();
    ASSERT_EQ(ready.size(), 1u);
    EXPECT_EQ(ready[0].second, event::read | event::write);
}

TEST(Selector, SeveralDescriptors) {
    auto [a, b] = sock::socketpair();
    auto [c, d] = sock::socketpair();
    sock::selector sel;
    sel.register_(b, event::read, 1);
    sel.register_(d, event::read, 2);
    a.sendall("1");
    c.sendall("2");
    const auto ready = sel.select(std::chrono::seconds(30));
    ASSERT_EQ(ready.size(), 2u);
    int sum = 0;
    for (const auto& [key, events] : ready) {
        EXPECT_EQ(events, event::read);
        sum += std::any_cast<int>(key->data);
    }
    EXPECT_EQ(sum, 3);
}

TEST(Selector, TimeoutReturnsEmpty) {
    auto [a, b] = sock::socketpair();
    sock::selector sel;
    sel.register_(b, event::read);
    EXPECT_TRUE(sel.select(std::chrono::milliseconds(10)).empty());
    std::error_code ec = std::make_error_code(std::errc::io_error);
    EXPECT_TRUE(sel.select(std::chrono::nanoseconds(-5), ec).empty());  // negative: only looks
    EXPECT_FALSE(ec);
}

TEST(Selector, EmptySelectorWaitsOutTheTimeout) {
    sock::selector sel;
    EXPECT_TRUE(sel.select(std::chrono::milliseconds(1)).empty());
}

TEST(Selector, AcceptReadiness) {
    auto l = test::listener_v4();
    sock::selector sel;
    sel.register_(l, event::read);
    sock::socket c;
    c.connect(l.getsockname());
    const auto ready = sel.select(std::chrono::seconds(30));
    ASSERT_EQ(ready.size(), 1u);
    l.settimeout(0.0);  // would throw rather than block if select had lied
    auto [conn, peer] = l.accept();
    EXPECT_EQ(peer, c.getsockname());
}

TEST(Selector, HangUpReportsRead) {
    auto [a, b] = sock::socketpair();
    sock::selector sel;
    sel.register_(b, event::read);
    a.close();
    const auto ready = sel.select(std::chrono::seconds(30));
    ASSERT_EQ(ready.size(), 1u);
    EXPECT_EQ(ready[0].second, event::read);
    EXPECT_EQ(b.recv(16), "");
}

TEST(Selector, ClosedDescriptorReportsWhatWasAsked) {
    int p[2];
    ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
    ::close(p[1]);
    sock::selector sel;
    sel.register_(p[0], event::read);
    ::close(p[0]);  // closed while registered: POLLNVAL, reported so the next call fails
    const auto ready = sel.select(std::chrono::nanoseconds(0));
    ASSERT_EQ(ready.size(), 1u);
    EXPECT_EQ(ready[0].second, event::read);
}

TEST(Selector, ModifyChangesEventsAndReplacesData) {
    auto [a, b] = sock::socketpair();
    sock::selector sel;
    sel.register_(a, event::read, std::string("old"));
    EXPECT_TRUE(sel.select(std::chrono::nanoseconds(0)).empty());
    const auto& key = sel.modify(a, event::write, std::string("new"));
    EXPECT_EQ(&key, &sel.get_key(a.fileno()));
    EXPECT_EQ(key.events, event::write);
    const auto ready = sel.select(std::chrono::nanoseconds(0));
    ASSERT_EQ(ready.size(), 1u);
    EXPECT_EQ(std::any_cast<std::string>(ready[0].first->data), "new");
    sel.modify(a, event::read);
    EXPECT_FALSE(sel.get_key(a.fileno()).data.has_value());
}

TEST(Selector, UnregisterReturnsTheKeyAndStopsReporting) {
    auto [a, b] = sock::socketpair();
    sock::selector sel;
    sel.register_(a, event::write, 7);
    sel.register_(b, event::write, 8);
    const sock::selector_key key = sel.unregister(a);
    EXPECT_EQ(key.fd, a.fileno());
    EXPECT_EQ(std::any_cast<int>(key.data), 7);
    EXPECT_EQ(sel.get_map().size(), 1u);
    EXPECT_EQ(sel.get_map().count(b.fileno()), 1u);
    const auto ready = sel.select(std::chrono::nanoseconds(0));
    ASSERT_EQ(ready.size(), 1u);
    EXPECT_EQ(ready[0].first->fd, b.fileno());
    EXPECT_THROW((void)sel.get_key(a.fileno()), std::out_of_range);
}

TEST(Selector, RegisteringTwiceIsFileExists) {
    auto [a, b] = sock::socketpair();
    sock::selector sel;
    sel.register_(a, event::read);
    auto t = capture([&, &a = a] { sel.register_(a, event::write); });
    ASSERT_TRUE(t.is<sock::error>()) << t.type_name();
    EXPECT_EQ(t.code, std::errc::file_exists);
    EXPECT_EQ(t.what, "register fd " + std::to_string(a.fileno()) + ": File exists");
    std::error_code ec;
    EXPECT_EQ(sel.register_(a.fileno(), event::write, {}, ec), nullptr);
    EXPECT_EQ(ec, std::errc::file_exists);
    EXPECT_EQ(sel.get_key(a.fileno()).events, event::read);  // the first registration stands
}

TEST(Selector, UnknownDescriptorIsNoSuchEntry) {
    sock::selector sel;
    auto t = capture([&] { sel.unregister(12345); });
    ASSERT_TRUE(t.is<sock::error>()) << t.type_name();
    EXPECT_EQ(t.what, "unregister fd 12345: No such file or directory");
    std::error_code ec;
    EXPECT_EQ(sel.modify(12345, event::read, {}, ec), nullptr);
    EXPECT_EQ(ec, std::errc::no_such_file_or_directory);
    EXPECT_THROW(sel.modify(12345, event::read), sock::error);
    sel.unregister(12345, ec);
    EXPECT_EQ(ec, std::errc::no_such_file_or_directory);
}

TEST(Selector, BadArgumentsAreInvalid) {
    sock::selector sel;
    auto t = capture([&] { sel.register_(-1, event::read); });
    ASSERT_TRUE(t.is<std::invalid_argument>()) << t.type_name();
    EXPECT_EQ(t.what, "register: invalid file descriptor -1");
    auto t2 = capture([&] { sel.register_(0, event::none); });
    ASSERT_TRUE(t2.is<std::invalid_argument>()) << t2.type_name();
    EXPECT_EQ(t2.what, "register fd 0: invalid events 0");
    EXPECT_THROW(sel.register_(0, static_cast<event>(4)), std::invalid_argument);
    std::error_code ec;
    EXPECT_EQ(sel.register_(0, event::none, {}, ec), nullptr);
    EXPECT_EQ(ec, std::errc::invalid_argument);
    EXPECT_TRUE(sel.get_map().empty());
    sel.register_(0, event::read);
    EXPECT_THROW(sel.modify(0, event::none), std::invalid_argument);
}

}  // namespace
