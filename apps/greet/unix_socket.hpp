#pragma once

// The file of a Unix stream socket: clearing a stale one before bind, removing ours on exit.

#include <string>
#include <sys/types.h>

namespace greet {

/// Removes path if it is a socket file that nobody answers on (left by a server that died).
/// Anything else is left alone for bind to fail on: a live server, a regular file, a directory.
void remove_stale_unix_socket(const std::string& path);

/// Unlinks the socket file bound at path when destroyed, unless it was since replaced.
/// Abstract names ("@name") have no file and are ignored.
class unix_socket_file {
public:
    /// Call right after bind: remembers which file is ours.
    explicit unix_socket_file(std::string path);
    ~unix_socket_file();
    unix_socket_file(const unix_socket_file&) = delete;
    unix_socket_file& operator=(const unix_socket_file&) = delete;

private:
    std::string path_;
    bool owned_ = false;
    ::dev_t dev_ = 0;
    ::ino_t ino_ = 0;
};

}  // namespace greet
