# A man page for every installed program, made at build time by help2man from the program's own
# --help and --version, gzip -9n compressed (no name or time stamp: reproducible) and installed
# in share/man/man1. help2man honours SOURCE_DATE_EPOCH for the page's date.
find_program(SOCK_HELP2MAN help2man)
find_program(SOCK_GZIP gzip)
if(NOT SOCK_HELP2MAN OR NOT SOCK_GZIP)
  message(STATUS "help2man or gzip not found: no man pages (scripts/deps.sh installs them)")
  return()
endif()
# Sanitizer builds are for tests; their programs need not document themselves.
if(SOCK_SANITIZE)
  return()
endif()

# The NAME line of each page (help2man takes the rest from --help).
set(sock_manpage_names
  "greet-server=serve the greeting protocol to many clients at once"
  "greet-client=send a message to a greet server and print its reply"
  "greet-bench=load a greeting or echo server and report rate and latency"
  "echo-server=send back everything each client sends"
  "chat-server=relay each line a client sends to every other client"
  "seed-server=the tutorial's greeting server, one client at a time"
  "seed-client=the tutorial's greeting client")

set(sock_manpages)
foreach(entry IN LISTS sock_manpage_names)
  string(REGEX MATCH "^([^=]+)=(.*)$" _ "${entry}")
  set(program ${CMAKE_MATCH_1})
  set(name ${CMAKE_MATCH_2})
  if(NOT TARGET ${program})
    continue()
  endif()
  set(page ${PROJECT_BINARY_DIR}/man/${program}.1)
  add_custom_command(OUTPUT ${page}.gz
    COMMAND ${CMAKE_COMMAND} -DHELP2MAN=${SOCK_HELP2MAN} -DGZIP=${SOCK_GZIP}
            -DPROGRAM=$<TARGET_FILE:${program}> -DNAME=${name} -DPAGE=${page}
            -P ${CMAKE_CURRENT_LIST_DIR}/manpage.cmake
    DEPENDS ${program} ${CMAKE_CURRENT_LIST_DIR}/manpage.cmake
    COMMENT "Man page ${program}.1"
    VERBATIM)
  list(APPEND sock_manpages ${page}.gz)
endforeach()
add_custom_target(sock_manpages ALL DEPENDS ${sock_manpages})
install(FILES ${sock_manpages} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT runtime)
