# cmake -DCLI=... -DTYPE=... -DGOLDEN=<tests/data/ggml_golden> -DWORK_DIR=... -P golden.cmake
# The CLI against bytes written by ggml's own reference code: quantizing
# input.f32 (rows of 256) must give <TYPE>.bin exactly, and dequantizing
# <TYPE>.bin must give <TYPE>.dequant.f32 exactly.
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

function(run_and_compare expected)
    execute_process(COMMAND "${CLI}" ${ARGN} RESULT_VARIABLE status ERROR_VARIABLE err)
    if(NOT status EQUAL 0)
        message(FATAL_ERROR "qtensor ${ARGN} failed (${status}): ${err}")
    endif()
    list(GET ARGN -1 produced)
    execute_process(COMMAND "${CMAKE_COMMAND}" -E compare_files "${produced}" "${expected}"
                    RESULT_VARIABLE differ)
    if(NOT differ EQUAL 0)
        message(FATAL_ERROR "${produced} differs from ggml's ${expected}")
    endif()
endfunction()

run_and_compare("${GOLDEN}/${TYPE}.bin"
    quantize --type ${TYPE} --cols 256 "${GOLDEN}/input.f32" "${WORK_DIR}/out.bin")
run_and_compare("${GOLDEN}/${TYPE}.dequant.f32"
    dequantize --type ${TYPE} --cols 256 "${GOLDEN}/${TYPE}.bin" "${WORK_DIR}/out.f32")
