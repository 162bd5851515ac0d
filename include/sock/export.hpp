#pragma once

// SOCK_API marks what a shared libsock exports. The libraries are compiled with hidden
// visibility, so only what is declared in a `namespace sock SOCK_API {` block (classes with
// their typeinfo and vtables, and functions) is visible to programs; what exists only in src/
// stays inside the library. The macro goes after the namespace name: both g++ and clang++
// accept an attribute there, while clang rejects it before the name.
#if defined(__GNUC__) || defined(__clang__)
#define SOCK_API __attribute__((visibility("default")))
#else
#define SOCK_API
#endif
