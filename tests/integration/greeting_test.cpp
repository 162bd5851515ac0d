// The greeting protocol without a network: reply_to and the seed's constants.

#include "greet/greeting.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace {

using namespace std::string_view_literals;

TEST(Greeting, SeedConstants) {
    EXPECT_EQ(greet::default_host, "localhost");
    EXPECT_EQ(greet::default_port, 8001);
    EXPECT_EQ(greet::default_backlog, 5);
    EXPECT_EQ(greet::default_timeout_seconds, 5.0);
    EXPECT_EQ(greet::max_message, 1024u);
    EXPECT_EQ(greet::password, "1");
    EXPECT_EQ(greet::welcome, "welcome to server!");
    EXPECT_EQ(greet::go_out, "please go out!");
}

TEST(Greeting, WelcomesExactlyOne) { EXPECT_EQ(greet::reply_to("1"), "welcome to server!"); }

TEST(Greeting, TurnsAwayEmpty) { EXPECT_EQ(greet::reply_to(""), "please go out!"); }

TEST(Greeting, TurnsAwayOneWithNewline) {
    EXPECT_EQ(greet::reply_to("1\n"), "please go out!");
    EXPECT_EQ(greet::reply_to("1\r\n"), "please go out!");
}

TEST(Greeting, TurnsAwayNearMisses) {
    for (std::string_view m : {"11"sv, " 1"sv, "1 "sv, "01"sv, "one"sv, "I"sv, "l"sv, "2"sv}) {
        EXPECT_EQ(greet::reply_to(m), "please go out!") << '"' << m << '"';
    }
}

TEST(Greeting, TurnsAwayHello) { EXPECT_EQ(greet::reply_to("hello"), "please go out!"); }

TEST(Greeting, TurnsAwayNulBytes) {
    EXPECT_EQ(greet::reply_to("\0"sv), "please go out!");
    EXPECT_EQ(greet::reply_to("1\0"sv), "please go out!");
    EXPECT_EQ(greet::reply_to("\0001"sv), "please go out!");
}

TEST(Greeting, TurnsAwayFullSizeMessages) {
    EXPECT_EQ(greet::reply_to(std::string(greet::max_message, '1')), "please go out!");
    std::string padded(greet::max_message, '\0');
    padded[0] = '1';
    EXPECT_EQ(greet::reply_to(padded), "please go out!");
}

TEST(Greeting, ReplyOutlivesTheMessage) {
    // The reply views static text, never the message (ASan builds catch a dangling view).
    std::string_view reply;
    {
        const std::string message = "1";
        reply = greet::reply_to(message);
    }
    EXPECT_EQ(reply, "welcome to server!");
}

}  // namespace
