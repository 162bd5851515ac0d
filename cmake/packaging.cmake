# The Debian package: `cpack -G DEB` (or plain `cpack`) in the build folder makes
# sock_<version>_<arch>.deb with the programs and their man pages, greet-server's systemd units
# (apps/CMakeLists.txt), the headers, the libraries, the CMake and pkg-config files, README.md,
# and the copyright and changelog Debian requires.
# Check it with `lintian sock_*.deb` (tests/consumers runs both).

set(SOCK_PACKAGE_MAINTAINER "The sock authors <sock@example.org>" CACHE STRING
  "Maintainer field of the .deb: name <address>")

# Documentation: share/doc/sock. The changelog is Debian's format, compressed as policy asks.
set(sock_docdir ${CMAKE_INSTALL_DATAROOTDIR}/doc/sock)
configure_file(${CMAKE_CURRENT_LIST_DIR}/debian/changelog.in ${PROJECT_BINARY_DIR}/debian/changelog
  @ONLY)
add_custom_command(OUTPUT ${PROJECT_BINARY_DIR}/debian/changelog.gz
  COMMAND gzip -9nfk ${PROJECT_BINARY_DIR}/debian/changelog
  DEPENDS ${PROJECT_BINARY_DIR}/debian/changelog
  VERBATIM)
add_custom_target(sock_changelog ALL DEPENDS ${PROJECT_BINARY_DIR}/debian/changelog.gz)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${CMAKE_CURRENT_LIST_DIR}/debian/copyright
              ${PROJECT_BINARY_DIR}/debian/changelog.gz
  DESTINATION ${sock_docdir} COMPONENT runtime)
install(FILES ${CMAKE_CURRENT_LIST_DIR}/debian/lintian-overrides
  DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/lintian/overrides RENAME sock COMPONENT runtime)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME sock)
set(CPACK_PACKAGE_VENDOR "the sock authors")
set(CPACK_PACKAGE_CONTACT "${SOCK_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_RESOURCE_FILE_README ${PROJECT_SOURCE_DIR}/README.md)
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Python's socket module in C++20, with an epoll event engine")
set(CPACK_STRIP_FILES ON)
# What dh_strip does beyond CPack's strip: the static libraries' debug information and the
# compiler's .comment and .note sections, in the staged files just before they are packed.
set(CPACK_PRE_BUILD_SCRIPTS ${CMAKE_CURRENT_LIST_DIR}/debian/strip.cmake)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${SOCK_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# A shared libsock_tls.so gets libssl3 from dpkg-shlibdeps; a static libsock_tls.a leaves the
# link to its users, whose find_package(sock) and pkg-config sock-tls then need OpenSSL's
# development files.
if(TARGET sock_tls AND NOT BUILD_SHARED_LIBS)
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "libssl-dev (>= 3.0)")
endif()
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# The synopsis is CPACK_PACKAGE_DESCRIPTION_SUMMARY; this is the extended description.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "The socket calls of Python (bind, listen, accept, recv, sendall, settimeout,
create_connection) as a C++20 library with RAII and errors that name the call,
the address and the cause, and an epoll event engine on which the same code,
written as coroutines, serves thousands of clients.
.
This package holds the greeting protocol's programs (greet-server,
greet-client, greet-bench, echo-server, seed-server, seed-client) with
greet-server's systemd units (greet-server.socket, greet-server.service),
the sock, sock_engine and sock_tls libraries with their headers, and the
files that let CMake (find_package(sock CONFIG)) and pkg-config (sock,
sock-tls) find them.")

include(CPack)
