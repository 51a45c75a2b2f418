# tests/cli/setup.cmake: the input files the CLI error tests read (the
# cli_inputs fixture). -DUTIL=testutil -DDIR=where
cmake_minimum_required(VERSION 3.21)

function(util)
    execute_process(COMMAND "${UTIL}" ${ARGN} WORKING_DIRECTORY "${DIR}" RESULT_VARIABLE rc)
    if(NOT rc STREQUAL "0")
        message(FATAL_ERROR "testutil ${ARGN}: ${rc}")
    endif()
endfunction()

file(REMOVE_RECURSE "${DIR}")
file(MAKE_DIRECTORY "${DIR}")
util(gen good.f32 2 64)                           # 2 rows of 64, 512 bytes
util(floats nan.f32 1*32 0.5 0.5 0.5 nan 0.5*28)  # row 1, element 3 is NaN
util(floats inf.f32 1*32 -inf 0*31)               # row 1, element 0 is -inf
util(floats huge.f32 1e6*32)                      # q4_0 scale 1e6/8 > 65504
util(bytes odd.f32 00*100)                        # 100 bytes: not rows of 128
util(bytes short.q4_0 00*40)                      # 40 bytes: not rows of 36
util(bytes empty.f32)                             # no rows at all
