# cmake -P script: run the install command that docs/getting-started.md tells
# users to type, and check that it installs the package. The command is the
# fenced code block right after the line
#   <!-- install command: run by the docs_install_command test -->
# Every line (or "&&"-joined part) of it must be a "cmake" call. It runs from
# SOURCE_DIR with its options unchanged, except for the three paths: "-S ."
# becomes SOURCE_DIR, the build folder ("-B <dir>", "--install <dir>") becomes
# WORK_DIR/build and "--prefix <dir>" becomes WORK_DIR/prefix, so nothing is
# written into the checkout or outside WORK_DIR.
#
#   MARKDOWN     docs/getting-started.md
#   SOURCE_DIR   the repository root
#   WORK_DIR     scratch folder (wiped)
#   EXTRA_ARGS   options appended to the configure call (optional; the main
#                build's -DQTENSOR_WITH_HIGHWAY=OFF and the like, which the doc
#                tells users without those libraries to add)
cmake_minimum_required(VERSION 3.21)

foreach(var IN ITEMS MARKDOWN SOURCE_DIR WORK_DIR)
    if(NOT DEFINED ${var})
        message(FATAL_ERROR "check_install_doc.cmake: pass -D${var}=...")
    endif()
endforeach()

file(READ "${MARKDOWN}" text)
string(REPLACE "\r\n" "\n" text "${text}")
set(marker "<!-- install command: run by the docs_install_command test -->\n")
string(FIND "${text}" "${marker}" at)
if(at EQUAL -1)
    message(FATAL_ERROR "${MARKDOWN} has no line '${marker}'")
endif()
string(LENGTH "${marker}" marker_length)
math(EXPR at "${at} + ${marker_length}")
string(SUBSTRING "${text}" ${at} -1 text)
string(REGEX REPLACE "^[ \t]+" "" text "${text}")   # the block may sit in a list item
if(NOT text MATCHES "^```(sh|shell|bash)?\n")
    message(FATAL_ERROR "${MARKDOWN}: the install-command marker must be followed by a ``` fence")
endif()
string(REGEX REPLACE "^```[a-z]*\n" "" text "${text}")
string(FIND "${text}" "```" end)
if(end EQUAL -1)
    message(FATAL_ERROR "${MARKDOWN}: the install command's code block is not closed")
endif()
string(SUBSTRING "${text}" 0 ${end} block)
string(REPLACE "\\\n" " " block "${block}")   # shell line continuations
string(REPLACE "&&" "\n" block "${block}")
string(REPLACE "\n" ";" commands "${block}")

set(build "${WORK_DIR}/build")
set(prefix "${WORK_DIR}/prefix")
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

set(ran 0)
foreach(command IN LISTS commands)
    string(STRIP "${command}" command)
    if(command STREQUAL "")
        continue()
    endif()
    separate_arguments(words UNIX_COMMAND "${command}")
    list(POP_FRONT words program)
    if(NOT program STREQUAL "cmake")
        message(FATAL_ERROR "install command '${command}': only cmake calls are supported")
    endif()
    set(args "")
    set(next "")
    set(configure FALSE)
    foreach(word IN LISTS words)
        if(next STREQUAL "source")
            if(NOT word STREQUAL ".")
                message(FATAL_ERROR "install command '${command}': expected '-S .' (run from the checkout)")
            endif()
            list(APPEND args "${SOURCE_DIR}")
            set(next "")
        elseif(next STREQUAL "build")
            list(APPEND args "${build}")
            set(next "")
        elseif(next STREQUAL "prefix")
            list(APPEND args "${prefix}")
            set(next "")
        elseif(word STREQUAL "-S")
            list(APPEND args "${word}")
            set(next "source")
            set(configure TRUE)
        elseif(word STREQUAL "-B" OR word STREQUAL "--install" OR word STREQUAL "--build")
            list(APPEND args "${word}")
            set(next "build")
        elseif(word STREQUAL "--prefix")
            list(APPEND args "${word}")
            set(next "prefix")
        elseif(word MATCHES "^-DCMAKE_INSTALL_PREFIX=")
            list(APPEND args "-DCMAKE_INSTALL_PREFIX=${prefix}")
        else()
            list(APPEND args "${word}")
        endif()
    endforeach()
    if(configure AND DEFINED EXTRA_ARGS)
        list(APPEND args ${EXTRA_ARGS})
    endif()
    string(REPLACE ";" " " shown "${args}")
    message(STATUS "documented: ${command}\n   running: cmake ${shown}")
    execute_process(COMMAND "${CMAKE_COMMAND}" ${args}
        WORKING_DIRECTORY "${SOURCE_DIR}" RESULT_VARIABLE status)
    if(NOT status EQUAL 0)
        message(FATAL_ERROR "the documented install command failed (exit ${status}): ${command}")
    endif()
    math(EXPR ran "${ran} + 1")
endforeach()
if(ran EQUAL 0)
    message(FATAL_ERROR "${MARKDOWN}: the install command's code block is empty")
endif()

foreach(file IN ITEMS share/cmake/qtensor/qtensorConfig.cmake
                      share/cmake/qtensor/qtensorConfigVersion.cmake
                      share/cmake/qtensor/qtensorTargets.cmake
                      include/qtensor/qtensor.hpp
                      include/qtensor/scheme/q4_0.hpp)
    if(NOT EXISTS "${prefix}/${file}")
        message(FATAL_ERROR "the documented install command did not install ${file} into the prefix")
    endif()
endforeach()
message(STATUS "the documented install command installed qtensor into ${prefix}")
