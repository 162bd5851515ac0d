#pragma once

// What a call threw, kept to be checked: its exact type, message and error code.

#include <exception>
#include <string>
#include <system_error>
#include <typeinfo>

namespace test {

/// What a call threw: its exact dynamic type, what() and, for system_errors, code().
struct thrown {
    const std::type_info* type = nullptr;  // nullptr: nothing was thrown
    std::string what;
    std::error_code code;

    template <class E>
    bool is() const { return type != nullptr && *type == typeid(E); }
    std::string type_name() const { return type ? type->name() : "<nothing thrown>"; }
};

template <class Fn>
thrown capture(Fn&& fn) {
    thrown t;
    try {
        fn();
    } catch (const std::system_error& e) {
        t.type = &typeid(e);
        t.what = e.what();
        t.code = e.code();
    } catch (const std::exception& e) {
        t.type = &typeid(e);
        t.what = e.what();
    }
    return t;
}

}  // namespace test
