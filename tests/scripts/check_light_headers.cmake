# tests/scripts/check_light_headers.cmake: the light headers include no Highway.
# A config reader, a file reader or a scheme must not drag hwy/foreach_target.h
# and every SIMD target into the TU that includes it. For each header, the
# compiler lists what it includes (-M); a path under hwy/ fails the test.
#
#   -DCXX=compiler -DINCLUDE_DIR=dir -DDEFINES=a;b -DHEADERS=qtensor/x.hpp;...
cmake_minimum_required(VERSION 3.21)
set(failed "")
foreach(header IN LISTS HEADERS)
    set(defines "")
    foreach(d IN LISTS DEFINES)
        list(APPEND defines "-D${d}")
    endforeach()
    execute_process(COMMAND "${CXX}" -std=c++20 -M -I "${INCLUDE_DIR}" ${defines} "${INCLUDE_DIR}/${header}"
        RESULT_VARIABLE rc OUTPUT_VARIABLE deps ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "${header}: the compiler could not list its includes:\n${err}")
    endif()
    if(deps MATCHES "[/ ]hwy/")
        list(APPEND failed "${header}")
    endif()
endforeach()
if(failed)
    list(JOIN failed "\n  " shown)
    message(FATAL_ERROR "these light headers include Highway:\n  ${shown}")
endif()
list(LENGTH HEADERS n)
message(STATUS "${n} light headers, none includes Highway")
