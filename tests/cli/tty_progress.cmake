# tests/cli/tty_progress.cmake: `qtensor convert` and a model load show their
# progress (bytes done, rate, time left) on a terminal, and say nothing of it
# when stderr is not one. `script` (util-linux, in every Debian) gives the
# command a terminal.
#
#   -DCLI=qtensor -DSCRIPT=script -DMODEL=model_dir -DWORK_DIR=dir
cmake_minimum_required(VERSION 3.21)

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
string(ASCII 27 esc)
set(line "\r${esc}\\[Kqtensor: (convert|loading): [0-9]+\\.[0-9] / [0-9]+\\.[0-9] MiB, [0-9]+\\.[0-9] MiB/s, [0-9]+:[0-5][0-9] left")

# on_terminal(VAR command...): the command's terminal output.
function(on_terminal var)
    list(JOIN ARGN " " command)
    execute_process(COMMAND "${SCRIPT}" -qec "${command}" /dev/null WORKING_DIRECTORY "${WORK_DIR}"
        RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(NOT rc STREQUAL "0")
        message(FATAL_ERROR "'${command}' on a terminal failed (${rc}): ${out} ${err}")
    endif()
    set(${var} "${out}" PARENT_SCOPE)
endfunction()

on_terminal(out "'${CLI}'" convert --policy q4_0 "'${MODEL}'" tty.gguf)
if(NOT out MATCHES "${line}.*${line}")
    message(FATAL_ERROR "convert shows no progress on a terminal: '${out}'")
endif()
on_terminal(out "'${CLI}'" generate --ids 1,2 --max-new 2 "'${MODEL}'")
if(NOT out MATCHES "${line}.*prefill 2 tokens")
    message(FATAL_ERROR "generate shows no loading progress on a terminal: '${out}'")
endif()

execute_process(COMMAND "${CLI}" convert --policy q4_0 "${MODEL}" plain.gguf WORKING_DIRECTORY "${WORK_DIR}"
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc STREQUAL "0" OR NOT out STREQUAL "" OR NOT err STREQUAL "")
    message(FATAL_ERROR "convert without a terminal: rc ${rc}, stdout '${out}', stderr '${err}' (expected nothing)")
endif()
