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

# reference_ids(<var> <reference.safetensors>): its input_ids as "5,17,3".
function(reference_ids var reference)
    step("${UTIL}" extract "${reference}" input_ids ids.i64)
    execute_process(COMMAND "${UTIL}" ids ids.i64 WORKING_DIRECTORY "${WORK_DIR}" OUTPUT_VARIABLE ids
        RESULT_VARIABLE rc)
    if(NOT rc STREQUAL "0" OR NOT ids MATCHES "^[0-9]+(,[0-9]+)+$")
        message(FATAL_ERROR "cannot read the reference ids: ${rc} '${ids}'")
    endif()
    set(${var} ${ids} PARENT_SCOPE)
endfunction()
