# tests/cli/model_roundtrip.cmake: a Hugging Face fixture through the model
# commands: convert to GGUF (f32 and q4_0 policies), inspect the files, and
# logits from the directory and from the GGUF files.
#   f32:  GGUF logits == directory logits, byte for byte (same weights, same
#         code), and within 1e-4 of max |logit| of transformers' reference;
#   q4_0: GGUF logits == directory logits with --policy q4_0, byte for byte
#         (convert quantizes as the model's loader does), and == the GGUF's
#         with --in-place (24 tokens: the interleaved layout's arithmetic is
#         the GGUF layout's from 4 tokens on);
#   lattice: the Q4_0 file lies on Q4_0 grids, convert --lattice keeps it.
# Leaves cut.gguf, a truncated copy, for the corrupt-file error test.
#
#   -DCLI=qtensor -DUTIL=qtensor_cli_testutil -DMODEL=fixture dir -DWORK_DIR=dir
cmake_minimum_required(VERSION 3.21)
include(${CMAKE_CURRENT_LIST_DIR}/step.cmake)

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

# The reference's token ids and logits.
reference_ids(ids "${MODEL}/reference.safetensors")
step("${UTIL}" extract "${MODEL}/reference.safetensors" logits want.f32)

step("${CLI}" convert "${MODEL}" f32.gguf)
step("${CLI}" convert --policy q4_0 -v "${MODEL}" q4_0.gguf)

# inspect: llama.cpp's names, and each role in its policy's type.
function(expect_inspect file)
    execute_process(COMMAND "${CLI}" inspect ${file} WORKING_DIRECTORY "${WORK_DIR}"
        OUTPUT_VARIABLE out RESULT_VARIABLE rc)
    if(NOT rc STREQUAL "0")
        message(FATAL_ERROR "inspect ${file} failed (${rc})")
    endif()
    foreach(re IN LISTS ARGN)
        if(NOT out MATCHES "${re}")
            message(FATAL_ERROR "inspect ${file}: no match for '${re}' in\n${out}")
        endif()
    endforeach()
endfunction()
expect_inspect(f32.gguf
    "general\\.architecture \\(string\\) = \"gemma4\""
    "gemma4\\.block_count \\(u32\\) = 6"
    "\n  token_embd\\.weight +f32 +\\[512, 128\\]"
    "\n  blk\\.2\\.attn_k\\.weight +f32 +\\[128, 128\\]"
    "\n  per_layer_token_embd\\.weight +f32 +\\[512, 96\\]"
    "\n  rope_freqs\\.weight +f32 +\\[32\\]"
    "total: 102 tensors")
expect_inspect(q4_0.gguf
    "general\\.file_type \\(u32\\) = 2"
    "\n  token_embd\\.weight +q8_0 +\\[512, 128\\]"
    "\n  blk\\.0\\.attn_q\\.weight +q4_0 +\\[128, 128\\]"
    "\n  blk\\.5\\.ffn_down\\.weight +q4_0 +\\[128, 256\\]"
    "\n  blk\\.1\\.inp_gate\\.weight +bf16 +\\[16, 128\\]"
    "\n  blk\\.0\\.attn_norm\\.weight +f32 +\\[128\\]"
    "total: 102 tensors")

step("${CLI}" logits --threads 1 --ids ${ids} --out hf.f32 "${MODEL}")
step("${CLI}" logits --threads 2 --ids ${ids} --out gguf.f32 f32.gguf)
step("${CMAKE_COMMAND}" -E compare_files hf.f32 gguf.f32)
step("${UTIL}" close hf.f32 want.f32 1e-4)

step("${CLI}" logits --policy q4_0 --threads 1 --ids ${ids} --out hf_q4_0.f32 "${MODEL}")
step("${CLI}" logits --policy q4_0 --threads 2 --ids ${ids} --out gguf_q4_0.f32 q4_0.gguf)
step("${CMAKE_COMMAND}" -E compare_files hf_q4_0.f32 gguf_q4_0.f32)
step("${CLI}" logits --policy q4_0 --threads 2 --in-place --ids ${ids} --out in_place_q4_0.f32 q4_0.gguf)
step("${CMAKE_COMMAND}" -E compare_files gguf_q4_0.f32 in_place_q4_0.f32)
# The policy really changed the numbers.
execute_process(COMMAND "${CMAKE_COMMAND}" -E compare_files hf.f32 hf_q4_0.f32
    WORKING_DIRECTORY "${WORK_DIR}" RESULT_VARIABLE rc)
if(rc STREQUAL "0")
    message(FATAL_ERROR "q4_0 logits are the f32 logits")
endif()

# A Q4_0 file is on Q4_0 grids by construction: lattice finds every block on
# one, none that ggml's rule moves; convert --lattice of it keeps its values,
# so its logits are the file's, byte for byte.
execute_process(COMMAND "${CLI}" lattice q4_0.gguf WORKING_DIRECTORY "${WORK_DIR}"
    OUTPUT_VARIABLE out RESULT_VARIABLE rc)
if(NOT rc STREQUAL "0" OR NOT out MATCHES "\ntotal +[0-9]+ +100\\.0%  [^\n]* +0\\.0% +[0-9.e+-]+ +[0-9.e+-]+\n$")
    message(FATAL_ERROR "lattice q4_0.gguf (${rc}):\n${out}")
endif()
step("${CLI}" convert --policy q4_0 --lattice q4_0.gguf lattice.gguf)
step("${CLI}" logits --policy q4_0 --threads 2 --ids ${ids} --out lattice_q4_0.f32 lattice.gguf)
step("${CMAKE_COMMAND}" -E compare_files gguf_q4_0.f32 lattice_q4_0.f32)
# The fixture's random weights lie on no grid.
execute_process(COMMAND "${CLI}" lattice "${MODEL}" WORKING_DIRECTORY "${WORK_DIR}"
    OUTPUT_VARIABLE out RESULT_VARIABLE rc)
if(NOT rc STREQUAL "0" OR NOT out MATCHES "\ntotal +[0-9]+ +0\\.0%  - ")
    message(FATAL_ERROR "lattice ${MODEL} (${rc}):\n${out}")
endif()

file(SIZE "${WORK_DIR}/f32.gguf" size)
math(EXPR half "${size} / 2")
step("${UTIL}" truncate f32.gguf cut.gguf ${half})
