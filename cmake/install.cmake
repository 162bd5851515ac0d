# What `cmake --install` puts in the prefix for a project that uses sock:
#   include/sock/*.hpp, the libraries, lib/cmake/sock (find_package(sock CONFIG) gives
#   sock::sock and sock::engine, and sock::tls when built) and lib/pkgconfig/sock.pc (and
#   sock-tls.pc).
# The programs install themselves (apps/, examples/), the man pages and docs in manpages.cmake
# and packaging.cmake.
include(CMakePackageConfigHelpers)

set(SOCK_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/sock)

set(sock_installed_targets sock sock_engine)
if(TARGET sock_tls)
  list(APPEND sock_installed_targets sock_tls)
endif()
install(TARGETS ${sock_installed_targets} EXPORT sockTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT dev
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/sock
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev
  FILES_MATCHING PATTERN "*.hpp")

install(EXPORT sockTargets NAMESPACE sock:: FILE sockTargets.cmake
  DESTINATION ${SOCK_CMAKE_DIR} COMPONENT dev)
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/sockConfig.cmake.in
  ${PROJECT_BINARY_DIR}/sockConfig.cmake
  INSTALL_DESTINATION ${SOCK_CMAKE_DIR})
# The same promise as the shared libraries' SONAME (libsock.so.<major>).
write_basic_package_version_file(${PROJECT_BINARY_DIR}/sockConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/sockConfig.cmake ${PROJECT_BINARY_DIR}/sockConfigVersion.cmake
  DESTINATION ${SOCK_CMAKE_DIR} COMPONENT dev)

# pkg-config: prefix is the one installed to (cmake --install --prefix, or cpack's /usr), so
# sock.pc is written at install time, straight into the prefix (a file in the build folder
# would be shared by an install and a cpack running at once). -std=c++20 is left to the user.
foreach(dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${dir}}")
    set(SOCK_PC_${dir} "${CMAKE_INSTALL_${dir}}")
  else()
    set(SOCK_PC_${dir} "\${prefix}/${CMAKE_INSTALL_${dir}}")
  endif()
endforeach()
set(SOCK_PC_PREFIX "@CMAKE_INSTALL_PREFIX@")  # for the install-time string(CONFIGURE)
# A static libsock_tls.a needs OpenSSL on every link line, not only with --static; a shared
# one has its own NEEDED entries, so libssl stays in Requires.private.
set(SOCK_TLS_PC_STATIC_LIBS "")
if(NOT BUILD_SHARED_LIBS)
  set(SOCK_TLS_PC_STATIC_LIBS " -lssl -lcrypto")
endif()
set(sock_pc_names sock)
if(TARGET sock_tls)
  list(APPEND sock_pc_names sock-tls)
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(sock_pc_dir "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
else()
  set(sock_pc_dir "\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig")
endif()
foreach(pc_name IN LISTS sock_pc_names)
  configure_file(${CMAKE_CURRENT_LIST_DIR}/${pc_name}.pc.in ${PROJECT_BINARY_DIR}/${pc_name}.pc.in @ONLY)
  install(CODE "
    file(READ \"${PROJECT_BINARY_DIR}/${pc_name}.pc.in\" pc)
    string(CONFIGURE \"\${pc}\" pc @ONLY)
    set(pc_file \"\$ENV{DESTDIR}${sock_pc_dir}/${pc_name}.pc\")
    message(STATUS \"Installing: \${pc_file}\")
    file(WRITE \"\${pc_file}\" \"\${pc}\")
    list(APPEND CMAKE_INSTALL_MANIFEST_FILES \"\${pc_file}\")" COMPONENT dev)
endforeach()
