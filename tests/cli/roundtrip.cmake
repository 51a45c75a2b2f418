# tests/cli/roundtrip.cmake: quantize generated rows with the CLI, check the
# quantized file's size, dequantize it, and check the values against the
# type's error bound (testutil check).
#
#   -DCLI= -DUTIL= -DWORK_DIR= -DTYPE= -DROWS= -DCOLS=
#   -DROW_BYTES=n   bytes of one quantized row, from the table of docs/gguf.md section 3
cmake_minimum_required(VERSION 3.21)

include(${CMAKE_CURRENT_LIST_DIR}/step.cmake)

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
step("${UTIL}" gen in.f32 ${ROWS} ${COLS})
step("${CLI}" quantize --type ${TYPE} --cols ${COLS} in.f32 q.bin)

file(SIZE "${WORK_DIR}/q.bin" got)
math(EXPR want "${ROWS} * ${ROW_BYTES}")
if(NOT got EQUAL want)
    message(FATAL_ERROR "q.bin holds ${got} bytes, expected ${ROWS} rows x ${ROW_BYTES} = ${want}")
endif()

step("${CLI}" dequantize --type ${TYPE} --cols ${COLS} q.bin back.f32)
step("${UTIL}" check ${TYPE} ${COLS} in.f32 back.f32)
