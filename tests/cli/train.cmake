# tests/cli/train.cmake: `qtensor train` on a fresh tiny-e2b-shaped model and
# a text (byte tokens):
#   - the loss falls: the mean of the last 3 steps at least 1.5 below the
#     first step's (about ln 512 = 6.2 at the start);
#   - a run stopped at step 3 (--until) and resumed equals the run that went
#     straight through, byte for byte (weights, optimizer state, loss log),
#     with other thread counts; under QAT (--policy q4_0);
#   - the saved directory is a model: convert packs it, logits runs it.
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
