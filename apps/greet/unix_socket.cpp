#include "greet/unix_socket.hpp"

#include <sock/socket.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <system_error>
#include <utility>

namespace greet {

namespace {

bool has_file(const std::string& path) {
    return !path.empty() && path.front() != '@' && path.front() != '\0';
}

}  // namespace

void remove_stale_unix_socket(const std::string& path) {
    struct stat st {};
    if (!has_file(path) || ::lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) return;
    // Only "refused" proves nobody listens; a timeout may be a live server with a full queue.
    sock::socket probe(sock::family::local, sock::kind::stream);
    probe.settimeout(1.0);
    if (probe.connect_ex(sock::address::unix_path(path)) == std::errc::connection_refused)
        ::unlink(path.c_str());
}

unix_socket_file::unix_socket_file(std::string path) : path_(std::move(path)) {
    struct stat st {};
    if (has_file(path_) && ::lstat(path_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
        owned_ = true;
        dev_ = st.st_dev;
        ino_ = st.st_ino;
    }
}

unix_socket_file::~unix_socket_file() {
    struct stat st {};
    if (owned_ && ::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_)
        ::unlink(path_.c_str());
}

}  // namespace greet
