#include <sock/error.hpp>
#include <sock/names.hpp>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace sock SOCK_API {

namespace {

const char* family_text(sock::family fam) {
    switch (fam) {
    case sock::family::inet: return "inet";
    case sock::family::inet6: return "inet6";
    case sock::family::local: return "unix";
    case sock::family::unspec: return "unspec";
    }
    return "?";
}

// The packed size of fam's addresses; 0 for families inet_pton/inet_ntop do not know.
std::size_t packed_size(sock::family fam) noexcept {
    if (fam == sock::family::inet) return sizeof(::in_addr);
    if (fam == sock::family::inet6) return sizeof(::in6_addr);
    return 0;
}

// Quotes text for a message, so spaces and empty strings stay visible.
std::string quoted(std::string_view text) { return '"' + std::string(text) + '"'; }

}  // namespace

std::string gethostname(std::error_code& ec) {
    // HOST_NAME_MAX is 64 on Linux; the extra byte keeps a full-length name terminated.
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) < 0) {
        ec = {errno, std::system_category()};
        return {};
    }
    ec.clear();
    return name;
}

std::string gethostname() {
    std::error_code ec;
    auto name = gethostname(ec);
    if (ec) throw_error(ec, "gethostname");
    return name;
}

std::string inet_pton(sock::family fam, std::string_view text, std::error_code& ec) {
    const std::size_t size = packed_size(fam);
    if (size == 0) {
        ec = std::make_error_code(std::errc::address_family_not_supported);
        return {};
    }
    unsigned char packed[sizeof(::in6_addr)] = {};
    // inet_pton wants a C string: an embedded NUL must not cut the text short into a valid one.
    if (text.find('\0') != std::string_view::npos ||
        ::inet_pton(static_cast<int>(fam), std::string(text).c_str(), packed) != 1) {
        ec = std::make_error_code(std::errc::invalid_argument);
        return {};
    }
    ec.clear();
    return std::string(reinterpret_cast<const char*>(packed), size);
}

std::string inet_pton(sock::family fam, std::string_view text) {
    std::error_code ec;
    auto out = inet_pton(fam, text, ec);
    if (ec == std::errc::invalid_argument)
        throw std::invalid_argument("inet_pton " + std::string(family_text(fam)) + " " +
                                    quoted(text) + ": illegal IP address string");
    if (ec) throw_error(ec, "inet_pton " + std::string(family_text(fam)) + " " + quoted(text));
    return out;
}

std::string inet_ntop(sock::family fam, std::string_view bytes, std::error_code& ec) {
    const std::size_t size = packed_size(fam);
    if (size == 0) {
        ec = std::make_error_code(std::errc::address_family_not_supported);
        return {};
    }
    if (bytes.size() != size) {
        ec = std::make_error_code(std::errc::invalid_argument);
        return {};
    }
    unsigned char packed[sizeof(::in6_addr)] = {};
    std::memcpy(packed, bytes.data(), size);
    char text[INET6_ADDRSTRLEN] = {};
    if (::inet_ntop(static_cast<int>(fam), packed, text, sizeof text) == nullptr) {
        ec = {errno, std::system_category()};
        return {};
    }
    ec.clear();
    return text;
}

std::string inet_ntop(sock::family fam, std::string_view bytes) {
    std::error_code ec;
    auto out = inet_ntop(fam, bytes, ec);
    if (ec == std::errc::invalid_argument)
        throw std::invalid_argument("inet_ntop " + std::string(family_text(fam)) + ": " +
                                    std::to_string(bytes.size()) +
                                    " bytes is an invalid length of packed IP address string");
    if (ec) throw_error(ec, "inet_ntop " + std::string(family_text(fam)));
    return out;
}

std::pair<std::string, std::string> getnameinfo(const address& addr, int flags,
                                                std::error_code& ec) {
    ::sockaddr_storage ss{};
    ::socklen_t len = 0;
    // Python resolves the host with AI_NUMERICHOST first: names are not looked up here.
    if (addr.is_unix()) {
        ec = std::error_code(EAI_FAMILY, gai_category());
        return {};
    }
    if (!addr.to_native(ss, len)) {
        ec = std::error_code(EAI_NONAME, gai_category());
        return {};
    }
    char host[NI_MAXHOST] = {};
    char service[NI_MAXSERV] = {};
    const int rc = ::getnameinfo(reinterpret_cast<const ::sockaddr*>(&ss), len, host, sizeof host,
                                 service, sizeof service, flags);
    if (rc != 0) {
        ec = rc == EAI_SYSTEM ? std::error_code(errno, std::system_category())
                              : std::error_code(rc, gai_category());
        return {};
    }
    ec.clear();
    return {host, service};
}

std::pair<std::string, std::string> getnameinfo(const address& addr, int flags) {
    std::error_code ec;
    auto out = getnameinfo(addr, flags, ec);
    if (ec) throw_error(ec, "getnameinfo " + addr.to_string());
    return out;
}

}  // namespace sock
