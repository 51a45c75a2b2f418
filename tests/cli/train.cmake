# tests/cli/train.cmake: `qtensor train` on a fresh tiny-e2b-shaped model and
# a text (byte tokens):
#   - the loss falls: the mean of the last 3 steps at least 1.5 below the
#     first step's (about ln 512 = 6.2 at the start);
#   - a run stopped at step 3 (--until) and resumed equals the run that went
#     straight through, byte for byte (weights, optimizer state, loss log),
#     with other thread counts; under QAT (--policy q4_0);
#   - the saved directory is a model: convert packs it, logits runs it;
#   - fake-quant exports the weights the forward saw: packed by ggml's rule
#     they give the run's logits byte for byte, and `lattice` finds every block
#     on a grid with largest code 8, which ggml's rule leaves in place;
#   - with --grid symmetric every block lies on an amax / 7 grid (largest code
#     7), ggml's rule moves them all, the aligned packing (convert --lattice)
#     none.
#
#   -DCLI=qtensor -DCONFIG=config.json -DDATA=text -DWORK_DIR=dir
cmake_minimum_required(VERSION 3.21)
include(${CMAKE_CURRENT_LIST_DIR}/step.cmake)

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
set(run --data "${DATA}" --steps 12 --seq 32 --batch 2 --lr 3e-3)

step("${CLI}" train ${run} --out f32 "${CONFIG}")
file(STRINGS "${WORK_DIR}/f32/loss.tsv" rows)
list(LENGTH rows n)
if(NOT n EQUAL 13)
    message(FATAL_ERROR "loss.tsv has ${n} lines, expected a header and 12 steps")
endif()
set(losses "")
foreach(row IN LISTS rows)
    if(row MATCHES "^[0-9]+\t([0-9.]+)\t")
        list(APPEND losses ${CMAKE_MATCH_1})
    endif()
endforeach()
list(GET losses 0 first)
list(GET losses 9 a)
list(GET losses 10 b)
list(GET losses 11 c)
set(shown "${first} ... ${a} ${b} ${c}")
# first - (a + b + c) / 3 >= 1.5, in thousandths (CMake has no float maths).
foreach(v first a b c)
    string(REGEX REPLACE "^([0-9]+)\\.([0-9][0-9][0-9]).*" "\\1\\2" ${v}_milli "${${v}}")
endforeach()
math(EXPR drop "${first_milli} - (${a_milli} + ${b_milli} + ${c_milli}) / 3")
if(drop LESS 1500)
    message(FATAL_ERROR "the loss fell by only ${drop}/1000 (first, last three: ${shown})")
endif()
message(STATUS "loss fell by ${drop}/1000 in 12 steps: ${shown}")

step("${CLI}" train ${run} --policy q4_0 --threads 2 --out straight "${CONFIG}")
step("${CLI}" train ${run} --policy q4_0 --threads 1 --until 3 --out resumed "${CONFIG}")
step("${CLI}" train ${run} --policy q4_0 --resume --out resumed "${CONFIG}")
foreach(file model.safetensors optimizer.safetensors)
    execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files straight/${file} resumed/${file}
        WORKING_DIRECTORY "${WORK_DIR}" RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "the resumed run's ${file} differs from the straight run's")
    endif()
endforeach()
foreach(dir straight resumed) # tokens/s differ: compare step, loss, lr, grad_norm
    file(STRINGS "${WORK_DIR}/${dir}/loss.tsv" rows_${dir})
    list(TRANSFORM rows_${dir} REPLACE "\t[^\t]*$" "")
endforeach()
if(NOT rows_straight STREQUAL rows_resumed)
    message(FATAL_ERROR "the loss logs differ:\n${rows_straight}\n${rows_resumed}")
endif()

step("${CLI}" convert --policy q4_0 straight q4_0.gguf)
step("${CLI}" logits --policy q4_0 --ids 40,41,42 --out logits.f32 q4_0.gguf)

# lattice_total(<export dir> <regex>): the total line of `qtensor lattice` must match.
function(lattice_total dir regex)
    execute_process(COMMAND "${CLI}" lattice ${dir} WORKING_DIRECTORY "${WORK_DIR}"
        RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    string(REGEX MATCH "\ntotal [^\n]*" total "${out}")
    string(STRIP "${total}" total)
    if(NOT rc EQUAL 0 OR NOT total MATCHES "${regex}")
        message(FATAL_ERROR "lattice ${dir}: expected a total line matching '${regex}':\n${out}${err}")
    endif()
    message(STATUS "lattice ${dir}: ${total}")
endfunction()

# columns: blocks, on grid, grids (largest code), moved, ggml err, aligned err.
step("${CLI}" fake-quant --policy q4_0 --dtype f32 --out straight-f32 straight)
lattice_total(straight-f32 " [0-9]+ +100\\.0% +8: 100\\.0% +0\\.0% +0 +0$")
step("${CLI}" convert --policy q4_0 straight-f32 export.gguf)
step("${CLI}" logits --policy q4_0 --ids 40,41,42 --out export.f32 export.gguf)
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files logits.f32 export.f32
    WORKING_DIRECTORY "${WORK_DIR}" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "the exported weights, packed, do not give the run's logits")
endif()

step("${CLI}" train ${run} --policy q4_0 --grid symmetric --out symmetric "${CONFIG}")
step("${CLI}" fake-quant --policy q4_0 --grid symmetric --dtype f32 --out symmetric-f32 symmetric)
lattice_total(symmetric-f32 " [0-9]+ +100\\.0% +7: 100\\.0% +100\\.0% +0\\.[0-9]+ +0$")
step("${CLI}" fake-quant --policy q4_0 --out symmetric-bf16 symmetric) # the run's grid; bf16, as a release stores it
lattice_total(symmetric-bf16 " [0-9]+ +100\\.0% +7: 100\\.0% +100\\.0% +0\\.[0-9]+ +0\\.00[0-9]+$")
