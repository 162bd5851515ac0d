// How a request's end is judged: error kinds and the greeting reply check.

#include "bench/outcome.hpp"

#include <sock/error.hpp>

#include <gtest/gtest.h>

#include <netdb.h>

#include <cerrno>
#include <string>
#include <string_view>

namespace {

using bench::error_kind;
using bench::reply_check;

std::error_code sys(int e) { return {e, std::system_category()}; }

std::span<const char> bytes(std::string_view s) { return {s.data(), s.size()}; }

TEST(Classify, ErrorCodes) {
    EXPECT_EQ(bench::classify(sys(ECONNREFUSED)), error_kind::refused);
    EXPECT_EQ(bench::classify(sys(ECONNRESET)), error_kind::reset);
    EXPECT_EQ(bench::classify(sys(EPIPE)), error_kind::reset);
    EXPECT_EQ(bench::classify(sys(ETIMEDOUT)), error_kind::timeout);
    EXPECT_EQ(bench::classify(sock::timeout_error()), error_kind::timeout);
    EXPECT_EQ(bench::classify(sys(EADDRNOTAVAIL)), error_kind::other);
    EXPECT_EQ(bench::classify(sys(EMFILE)), error_kind::other);
    EXPECT_EQ(bench::classify(std::error_code(EAI_NONAME, sock::gai_category())), error_kind::other);
}

TEST(Classify, BacksOffWhenRetryingAtOnceWouldFailAgain) {
    EXPECT_TRUE(bench::needs_backoff(sys(EADDRNOTAVAIL)));
    EXPECT_TRUE(bench::needs_backoff(sys(EMFILE)));
    EXPECT_TRUE(bench::needs_backoff(sys(ENFILE)));
    EXPECT_FALSE(bench::needs_backoff(sys(ECONNREFUSED)));
    EXPECT_FALSE(bench::needs_backoff(sys(ECONNRESET)));
    EXPECT_FALSE(bench::needs_backoff({}));
}

TEST(Classify, KindNamesAreTheReportedOnes) {
    EXPECT_EQ(bench::name_of(error_kind::refused), "refused");
    EXPECT_EQ(bench::name_of(error_kind::bad_reply), "bad_reply");
    EXPECT_EQ(bench::name_of(error_kind::other), "other");
}

TEST(ExpectedReply, FollowsTheGreetingProtocol) {
    EXPECT_EQ(bench::default_expected_reply("1"), "welcome to server!");
    EXPECT_EQ(bench::default_expected_reply("hello"), "please go out!");
    EXPECT_EQ(bench::default_expected_reply("1\n"), "please go out!");
    EXPECT_EQ(bench::default_expected_reply(""), "please go out!");
}

TEST(ReplyCheck, WholeReplyThenEofSucceeds) {
    reply_check c("welcome to server!");
    EXPECT_TRUE(c.feed(bytes("welcome to server!")));
    EXPECT_TRUE(c.complete());
    EXPECT_EQ(c.verdict({}), std::nullopt);
}

TEST(ReplyCheck, ReplyInPiecesSucceeds) {
    reply_check c("welcome to server!");
    for (char ch : std::string_view("welcome to server!")) EXPECT_TRUE(c.feed({&ch, 1}));
    EXPECT_EQ(c.verdict({}), std::nullopt);
}

TEST(ReplyCheck, ResetAfterTheWholeReplySucceeds) {
    // nginx's `return` closes with the request unread: the kernel resets after the reply.
    reply_check c("welcome to server!");
    c.feed(bytes("welcome to server!"));
    EXPECT_EQ(c.verdict(sys(ECONNRESET)), std::nullopt);
}

TEST(ReplyCheck, ResetBeforeTheWholeReplyIsReset) {
    reply_check c("welcome to server!");
    c.feed(bytes("welcome"));
    EXPECT_EQ(c.verdict(sys(ECONNRESET)), error_kind::reset);
    EXPECT_EQ(reply_check("x").verdict(sys(ECONNRESET)), error_kind::reset);
}

TEST(ReplyCheck, ShortReplyThenEofIsBadReply) {
    reply_check c("welcome to server!");
    c.feed(bytes("welcome"));
    EXPECT_EQ(c.verdict({}), error_kind::bad_reply);
}

TEST(ReplyCheck, NoReplyThenEofIsBadReply) {
    EXPECT_EQ(reply_check("welcome to server!").verdict({}), error_kind::bad_reply);
}

TEST(ReplyCheck, OtherReplyIsBadReply) {
    reply_check c("welcome to server!");
    EXPECT_FALSE(c.feed(bytes("please go out!")));
    EXPECT_EQ(c.verdict({}), error_kind::bad_reply);
    EXPECT_EQ(c.verdict(sys(ECONNRESET)), error_kind::bad_reply);
}

TEST(ReplyCheck, LongerReplyIsBadReply) {
    reply_check c("welcome to server!");
    EXPECT_TRUE(c.feed(bytes("welcome to server!")));
    EXPECT_FALSE(c.feed(bytes("\n")));
    EXPECT_FALSE(c.complete());
    EXPECT_EQ(c.verdict({}), error_kind::bad_reply);
}

TEST(ReplyCheck, EmptyFeedChangesNothing) {
    reply_check c("ok");
    EXPECT_TRUE(c.feed({}));
    EXPECT_EQ(c.received(), 0u);
}

TEST(ReplyCheck, SocketErrorsKeepTheirKind) {
    EXPECT_EQ(reply_check("ok").verdict(sys(ECONNREFUSED)), error_kind::refused);
    EXPECT_EQ(reply_check("ok").verdict(sock::timeout_error()), error_kind::timeout);
    EXPECT_EQ(reply_check("ok").verdict(sys(ENETUNREACH)), error_kind::other);
}

}  // namespace
