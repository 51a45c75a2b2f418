# tests/cli/ppl.cmake: `qtensor ppl --ids` on a Hugging Face fixture prints
# exp of the fixture's `loss` (transformers' mean next-token cross-entropy of
# its input_ids), within REL. MODEL may be the directory or a GGUF file.
#
#   -DCLI=qtensor -DUTIL=qtensor_cli_testutil -DMODEL=model -DREFERENCE=reference.safetensors
#   -DWORK_DIR=dir -DREL=1e-5
cmake_minimum_required(VERSION 3.21)
include(${CMAKE_CURRENT_LIST_DIR}/step.cmake)

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

reference_ids(ids "${REFERENCE}")
execute_process(COMMAND "${CLI}" ppl --threads 2 --ids ${ids} "${MODEL}" WORKING_DIRECTORY "${WORK_DIR}"
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc STREQUAL "0" OR NOT out MATCHES "^perplexity: ([0-9.]+)\n$")
    message(FATAL_ERROR "ppl failed (${rc}): '${out}' ${err}")
endif()
set(got ${CMAKE_MATCH_1})
step("${UTIL}" extract "${REFERENCE}" loss loss.f32)
step("${UTIL}" perplexity loss.f32 ${got} ${REL})
