# The headers refuse the flags that would change the reference quantizers'
# bytes: each one must stop compilation with qtensor's #error, and the same
# source must compile without it (so a failure is the guard, not the source).
set(qtensor_flag_probe "${CMAKE_CURRENT_SOURCE_DIR}/scripts/flag_probe.cpp")
set(qtensor_flag_base ${CMAKE_CXX_COMPILER} -std=c++20 -fsyntax-only -I${PROJECT_SOURCE_DIR}/include)

# GCC defines a macro for each flag. Clang 14 defines them only for
# -ffast-math and -ffinite-math-only: the other three cannot be seen from the
# preprocessor there, so they are tested (and refused) with GCC only.
set(qtensor_flags_refused -ffast-math -ffinite-math-only)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    list(APPEND qtensor_flags_refused -freciprocal-math "-fassociative-math -fno-signed-zeros -fno-trapping-math"
                                      -fno-signed-zeros)
endif()

add_test(NAME flags_plain_compiles COMMAND ${qtensor_flag_base} ${qtensor_flag_probe})
foreach(flag IN LISTS qtensor_flags_refused)
    string(REGEX REPLACE "[^a-z]+" "_" name "${flag}")
    separate_arguments(flag_list UNIX_COMMAND "${flag}")
    add_test(NAME flags_refuse${name} COMMAND ${qtensor_flag_base} ${flag_list} ${qtensor_flag_probe})
    set_tests_properties(flags_refuse${name} PROPERTIES
        PASS_REGULAR_EXPRESSION "breaks the byte-exact reference quantizers")
    add_test(NAME flags_opt_out${name}
        COMMAND ${qtensor_flag_base} ${flag_list} -DQTENSOR_ALLOW_FAST_MATH ${qtensor_flag_probe})
endforeach()
