# cmake -DHELP2MAN=... -DGZIP=... -DPROGRAM=path -DNAME="what it does" -DPAGE=out.1 -P manpage.cmake
# Writes PAGE.gz: help2man's page from PROGRAM --help and --version, gzip -9n. A program whose
# --help or --version fails breaks the build.
get_filename_component(program_name ${PROGRAM} NAME)
get_filename_component(dir ${PAGE} DIRECTORY)
file(MAKE_DIRECTORY ${dir})
# help2man writes a page from whatever a program prints, even a usage error; so first check
# that --help and --version both succeed and that --version names the program.
set(failed "")
foreach(option --help --version)
  execute_process(COMMAND ${PROGRAM} ${option} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_QUIET TIMEOUT 10)
  if(NOT rc EQUAL 0)
    set(failed "${program_name} ${option} exited with ${rc}")
  elseif(option STREQUAL "--version" AND NOT out MATCHES "^${program_name} ")
    set(failed "${program_name} --version does not start with its name")
  endif()
endforeach()
if(NOT failed)
  execute_process(
    COMMAND ${HELP2MAN} --no-info --section=1 --name=${NAME} --output=${PAGE} ${PROGRAM}
    RESULT_VARIABLE rc ERROR_VARIABLE why)
  if(NOT rc EQUAL 0)
    set(failed "help2man: ${why}")
  endif()
endif()
if(failed)
  # Every program documents itself; one that cannot is a defect to fix, not to paper over.
  message(FATAL_ERROR "no man page from --help: ${failed}")
endif()
execute_process(COMMAND ${GZIP} -9nf ${PAGE} RESULT_VARIABLE failed)
if(failed)
  message(FATAL_ERROR "gzip ${PAGE} failed")
endif()
