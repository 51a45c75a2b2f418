# tests/cli/ppl_text.cmake: `qtensor ppl --data` reads a text as byte tokens
# (byte b is id b + 3, as `qtensor train` reads it) cut into chunks that each
# start again at position 0:
# - "Gemma" (bytes 71,101,109,109,97) scores as --ids 74,104,112,112,100;
# - "GemmaGemma" with --ctx 5 is two chunks that each score as "Gemma";
# - "Gemma" with --ctx 4: one chunk "Gemm", the last byte alone predicts nothing;
# - "GemmaGemma" with --ctx 5 --chunks 1 is "Gemma" again;
# - "GemmaGe" with --ctx 5 scores "Gemma" and the last chunk "Ge": 4 + 1 tokens.
#
#   -DCLI=qtensor -DMODEL=model -DWORK_DIR=dir
cmake_minimum_required(VERSION 3.21)

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
file(WRITE "${WORK_DIR}/one.txt" "Gemma")
file(WRITE "${WORK_DIR}/two.txt" "GemmaGemma")
file(WRITE "${WORK_DIR}/seven.txt" "GemmaGe")

# perplexity(<var> <args>...): the figure `qtensor ppl <args> MODEL` prints.
function(perplexity var)
    execute_process(COMMAND "${CLI}" ppl --threads 1 ${ARGN} "${MODEL}" WORKING_DIRECTORY "${WORK_DIR}"
        RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(NOT rc STREQUAL "0" OR NOT out MATCHES "^perplexity: ([0-9.]+)\n$")
        message(FATAL_ERROR "ppl ${ARGN} failed (${rc}): '${out}' ${err}")
    endif()
    message(STATUS "ppl ${ARGN}: ${CMAKE_MATCH_1}; ${err}")
    set(${var} ${CMAKE_MATCH_1} PARENT_SCOPE)
    set(${var}_stderr "${err}" PARENT_SCOPE)
endfunction()

perplexity(text --data one.txt)
perplexity(ids --ids 74,104,112,112,100)
perplexity(twice --data two.txt --ctx 5)
perplexity(cut --data one.txt --ctx 4)
perplexity(four --ids 74,104,112,112)
perplexity(first --data two.txt --ctx 5 --chunks 1)
perplexity(tail --data seven.txt --ctx 5)
if(NOT text STREQUAL ids OR NOT twice STREQUAL ids OR NOT cut STREQUAL four OR cut STREQUAL ids OR
   NOT first STREQUAL ids)
    message(FATAL_ERROR "text ${text}, ids ${ids}, two chunks ${twice}, first chunk ${first}; cut ${cut} vs ${four}")
endif()
if(NOT cut_stderr MATCHES "ppl: 3 tokens predicted in 1 chunks of up to 4;" OR
   NOT tail_stderr MATCHES "ppl: 5 tokens predicted in 2 chunks of up to 5;" OR tail STREQUAL ids)
    message(FATAL_ERROR "chunk counts: '${cut_stderr}' '${tail_stderr}'")
endif()
