# tests/scripts/check_defined_symbols.cmake: an object file defines no symbol
# whose demangled name matches the regular expression FORBIDDEN: a TU that
# should only declare some code did not compile it after all.
#
#   -DNM=nm -DOBJECT=file.o -DFORBIDDEN=regex
cmake_minimum_required(VERSION 3.21)
execute_process(COMMAND "${NM}" -C --defined-only "${OBJECT}"
    RESULT_VARIABLE rc OUTPUT_VARIABLE symbols ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${NM} could not read ${OBJECT}:\n${err}")
endif()
string(REGEX MATCHALL "[^\n]*(${FORBIDDEN})[^\n]*" found "${symbols}")
if(found)
    list(JOIN found "\n  " shown)
    message(FATAL_ERROR "${OBJECT} defines what it should only declare (${FORBIDDEN}):\n  ${shown}")
endif()
string(REGEX MATCHALL "\n" lines "${symbols}")
list(LENGTH lines n)
message(STATUS "${OBJECT}: ${n} symbols defined, none matches ${FORBIDDEN}")
