# CPACK_PRE_BUILD_SCRIPTS: runs in cpack after the files are staged, before they are packed.
# CPack's own strip (CPACK_STRIP_FILES) leaves what lintian reports and dh_strip removes: the
# static libraries' debug information, and the .comment and .note sections of everything.
find_program(strip NAMES strip REQUIRED)
file(GLOB_RECURSE archives "${CPACK_TEMPORARY_INSTALL_DIRECTORY}/*.a")
file(GLOB_RECURSE programs "${CPACK_TEMPORARY_INSTALL_DIRECTORY}/*/bin/*")
foreach(file IN LISTS archives)
  execute_process(COMMAND ${strip} --strip-debug --remove-section=.comment --remove-section=.note
                          --enable-deterministic-archives ${file} COMMAND_ERROR_IS_FATAL ANY)
endforeach()
foreach(file IN LISTS programs)
  execute_process(COMMAND ${strip} --remove-section=.comment --remove-section=.note ${file}
                  COMMAND_ERROR_IS_FATAL ANY)
endforeach()
