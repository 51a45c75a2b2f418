# tests/cli/grad.cmake: `qtensor grad` on a Hugging Face fixture against
# transformers' own backward pass (reference.safetensors: loss, grad.<name>):
# the loss and every gradient within REL of the tensor's max magnitude, and
# no gradient missing or extra. MODEL may be the fixture's directory or a
# GGUF file converted from it (GGUF names come back as Hugging Face names).
#
#   -DCLI=qtensor -DUTIL=qtensor_cli_testutil -DMODEL=model -DREFERENCE=reference.safetensors
#   -DWORK_DIR=dir -DREL=1e-4
cmake_minimum_required(VERSION 3.21)
include(${CMAKE_CURRENT_LIST_DIR}/step.cmake)

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

reference_ids(ids "${REFERENCE}")

step("${CLI}" grad --ids ${ids} --out got.safetensors "${MODEL}")

execute_process(COMMAND "${UTIL}" names "${REFERENCE}" grad. OUTPUT_VARIABLE want_names RESULT_VARIABLE rc1)
execute_process(COMMAND "${UTIL}" names got.safetensors "" WORKING_DIRECTORY "${WORK_DIR}"
    OUTPUT_VARIABLE got_names RESULT_VARIABLE rc2)
list(LENGTH want_names n_want)
if(NOT rc1 STREQUAL "0" OR NOT rc2 STREQUAL "0" OR n_want LESS 10)
    message(FATAL_ERROR "cannot list the tensors (${rc1}, ${rc2}): ${want_names}")
endif()
set(expected loss ${want_names})
list(SORT expected)
list(SORT got_names)
if(NOT got_names STREQUAL expected)
    message(FATAL_ERROR "grad wrote\n${got_names}\nexpected\n${expected}")
endif()

foreach(name IN LISTS expected)
    step("${UTIL}" extract got.safetensors ${name} got.f32)
    step("${UTIL}" extract "${REFERENCE}" ${name} want.f32)
    step("${UTIL}" close got.f32 want.f32 ${REL})
endforeach()
