# What a dependency added with add_subdirectory or FetchContent must leave alone in the project
# that adds it: settings that belong to that project, and the work of building sock's own tests
# and programs. sock_consumer_record() before adding sock, sock_consumer_expect_untouched() after.
# (GNUInstallDirs' cache entries are not watched: any project including it gets the same ones.)
set(sock_consumer_watched
  CMAKE_BUILD_TYPE CMAKE_CXX_FLAGS CMAKE_EXE_LINKER_FLAGS CMAKE_CXX_STANDARD
  CMAKE_RUNTIME_OUTPUT_DIRECTORY CMAKE_LIBRARY_OUTPUT_DIRECTORY CMAKE_ARCHIVE_OUTPUT_DIRECTORY
  CMAKE_EXPORT_COMPILE_COMMANDS BUILD_TESTING)

macro(sock_consumer_record)
  foreach(var IN LISTS sock_consumer_watched)
    set(sock_consumer_before_${var} "${${var}}")
  endforeach()
  get_directory_property(sock_consumer_before_options COMPILE_OPTIONS)
  get_directory_property(sock_consumer_before_link_options LINK_OPTIONS)
endmacro()

macro(sock_consumer_expect_untouched)
  foreach(var IN LISTS sock_consumer_watched)
    if(NOT "${${var}}" STREQUAL "${sock_consumer_before_${var}}")
      message(FATAL_ERROR "sock changed ${var}: '${sock_consumer_before_${var}}' -> '${${var}}'")
    endif()
  endforeach()
  get_directory_property(options COMPILE_OPTIONS)
  get_directory_property(link_options LINK_OPTIONS)
  if(NOT "${options};${link_options}" STREQUAL
     "${sock_consumer_before_options};${sock_consumer_before_link_options}")
    message(FATAL_ERROR "sock changed this directory's compile or link options")
  endif()
  foreach(target greet-server greet-client greet-bench echo-server seed-server seed-client
                 address_test event_loop_test sock_manpages)
    if(TARGET ${target})
      message(FATAL_ERROR "sock added its own ${target} to a project that only uses it")
    endif()
  endforeach()
  foreach(target sock::sock sock::engine)
    if(NOT TARGET ${target})
      message(FATAL_ERROR "no ${target} after adding sock")
    endif()
  endforeach()
endmacro()
