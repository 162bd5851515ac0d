#pragma once

// An environment variable set (or unset) for one scope, for tests of code that reads the
// environment (socket activation, $NOTIFY_SOCKET). Not thread-safe: setenv is not.

#include <stdlib.h>

#include <cstdlib>
#include <optional>
#include <string>

namespace test {

/// Sets name to value (nullopt: unsets it) until destroyed, then puts back what was there.
class scoped_env {
public:
    scoped_env(std::string name, std::optional<std::string> value) : name_(std::move(name)) {
        if (const char* old = std::getenv(name_.c_str())) old_ = old;
        set(value);
    }
    ~scoped_env() { set(old_); }
    scoped_env(const scoped_env&) = delete;
    scoped_env& operator=(const scoped_env&) = delete;

private:
    void set(const std::optional<std::string>& value) {
        if (value) ::setenv(name_.c_str(), value->c_str(), 1);
        else ::unsetenv(name_.c_str());
    }
    std::string name_;
    std::optional<std::string> old_;
};

}  // namespace test
