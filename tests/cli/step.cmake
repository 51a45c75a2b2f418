# step(<command>...): run a command in WORK_DIR; stop the script on failure,
# showing its output. Included by the CLI test scripts.
function(step)
    execute_process(COMMAND ${ARGN} WORKING_DIRECTORY "${WORK_DIR}"
        RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(NOT rc STREQUAL "0")
        message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}${err}")
    endif()
    message(STATUS "${out}${err}")
endfunction()
