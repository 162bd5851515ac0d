#pragma once

#include <sock/address.hpp>
#include <sock/export.hpp>

#include <netdb.h>

#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace sock SOCK_API {

/// This machine's host name (Python's socket.gethostname).
std::string gethostname();
std::string gethostname(std::error_code& ec);

/// The packed bytes of a textual IPv4 or IPv6 address (Python's socket.inet_pton): 4 or 16
/// bytes in network order. Text that is no address of `fam` throws std::invalid_argument naming
/// it; a family other than inet or inet6 throws sock::error (Address family not supported).
std::string inet_pton(sock::family fam, std::string_view text);
/// Non-throwing form: invalid_argument or address_family_not_supported in ec, empty result.
std::string inet_pton(sock::family fam, std::string_view text, std::error_code& ec);

/// The text of a packed address (Python's socket.inet_ntop); bytes must be 4 (inet) or 16
/// (inet6) long, else std::invalid_argument; another family throws sock::error.
std::string inet_ntop(sock::family fam, std::string_view bytes);
/// Non-throwing form: invalid_argument or address_family_not_supported in ec, empty result.
std::string inet_ntop(sock::family fam, std::string_view bytes, std::error_code& ec);

/// The (host, service) names of a numeric address (Python's socket.getnameinfo); flags are
/// NI_* values (NI_NUMERICHOST, NI_NUMERICSERV, NI_NAMEREQD, NI_DGRAM...). Names are not
/// resolved first, as Python's AI_NUMERICHOST lookup: a host name or a Unix path throws
/// gaierror, as does a failed lookup ("getnameinfo 10.0.0.1:80: Name or service not known").
std::pair<std::string, std::string> getnameinfo(const address& addr, int flags = 0);
/// Non-throwing form; on failure returns empty names and sets ec in gai_category() (or system).
std::pair<std::string, std::string> getnameinfo(const address& addr, int flags,
                                                std::error_code& ec);

}  // namespace sock
