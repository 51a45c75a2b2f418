# tests/cli/layout.cmake: byte-exact layout in both directions. Writes the
# hand-made input floats and the bytes derived from them by hand (see
# cli.cmake), quantizes with the CLI and compares byte for byte, then
# dequantizes the hand-made bytes and compares with the hand-derived floats.
#
#   -DCLI= -DUTIL= -DWORK_DIR= -DTYPE= -DCOLS=
#   -DFLOATS=tokens -DBYTES=tokens -DBACK=tokens   (testutil's v*count / hh*count)
cmake_minimum_required(VERSION 3.21)

include(${CMAKE_CURRENT_LIST_DIR}/step.cmake)

function(same_bytes got want)
    execute_process(COMMAND "${CMAKE_COMMAND}" -E compare_files "${WORK_DIR}/${got}" "${WORK_DIR}/${want}"
        RESULT_VARIABLE differ)
    if(differ)
        file(READ "${WORK_DIR}/${got}" got_hex HEX)
        file(READ "${WORK_DIR}/${want}" want_hex HEX)
        message(FATAL_ERROR "${got} differs from ${want}\n  got:  ${got_hex}\n  want: ${want_hex}")
    endif()
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
step("${UTIL}" floats in.f32 ${FLOATS})
step("${UTIL}" bytes want.bin ${BYTES})
step("${UTIL}" floats want.f32 ${BACK})

step("${CLI}" quantize --type ${TYPE} --cols ${COLS} in.f32 got.bin)
same_bytes(got.bin want.bin)
step("${CLI}" dequantize --type ${TYPE} --cols ${COLS} want.bin got.f32)
same_bytes(got.f32 want.f32)
