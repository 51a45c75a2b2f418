# tests/cli/run_cli.cmake: runs the qtensor CLI once and checks how it ended.
# A crash (signal) always fails, whatever was expected.
#
#   -DCLI=path            the qtensor executable
#   -DARGS=a;b;c          its arguments
#   -DWORK_DIR=dir        emptied, then the working directory of the run
#   -DEXPECT_CODE=n       the exit status it must give
#   -DSTDERR_REGEX=re     stderr must match (empty: not checked)
#   -DSTDOUT_REGEX=re     stdout must match (empty: stdout must be empty for a
#                         non-zero EXPECT_CODE)
#   -DONE_LINE=ON         stderr must be exactly one line starting "qtensor: "
#   -DKEEP=name           (optional) a file created in WORK_DIR before the run that must
#                         come through unchanged
#   -DEXPECT_FILES=a;b    the files WORK_DIR must hold afterwards (besides KEEP);
#                         default none: a failed run leaves no output or
#                         temporary file behind
cmake_minimum_required(VERSION 3.21)

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
set(keep_text "previous contents of ${KEEP}\n")
if(KEEP)
    file(WRITE "${WORK_DIR}/${KEEP}" "${keep_text}")
endif()

execute_process(COMMAND "${CLI}" ${ARGS}
    WORKING_DIRECTORY "${WORK_DIR}"
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)

set(shown "qtensor ${ARGS}\n  exit: ${rc}\n  stdout: [${out}]\n  stderr: [${err}]")
# execute_process reports a signal as text ("Segmentation fault", "Child aborted").
if(NOT rc MATCHES "^[0-9]+$")
    message(FATAL_ERROR "crashed\n${shown}")
endif()
if(NOT rc EQUAL EXPECT_CODE)
    message(FATAL_ERROR "expected exit status ${EXPECT_CODE}\n${shown}")
endif()
if(ONE_LINE AND NOT err MATCHES "^qtensor: [^\n]*\n$")
    message(FATAL_ERROR "stderr is not one line starting 'qtensor: '\n${shown}")
endif()
if(NOT STDERR_REGEX STREQUAL "" AND NOT err MATCHES "${STDERR_REGEX}")
    message(FATAL_ERROR "stderr does not match '${STDERR_REGEX}'\n${shown}")
endif()
if(NOT STDOUT_REGEX STREQUAL "")
    if(NOT out MATCHES "${STDOUT_REGEX}")
        message(FATAL_ERROR "stdout does not match '${STDOUT_REGEX}'\n${shown}")
    endif()
elseif(NOT EXPECT_CODE EQUAL 0 AND NOT out STREQUAL "")
    message(FATAL_ERROR "an error wrote to stdout\n${shown}")
endif()

file(GLOB left RELATIVE "${WORK_DIR}" "${WORK_DIR}/*")
list(SORT left)
set(want ${EXPECT_FILES} ${KEEP})
list(SORT want)
if(NOT "${left}" STREQUAL "${want}")
    message(FATAL_ERROR "the run left [${left}] in its directory, expected [${want}]\n${shown}")
endif()
if(KEEP)
    file(READ "${WORK_DIR}/${KEEP}" kept)
    if(NOT kept STREQUAL keep_text)
        message(FATAL_ERROR "${KEEP} was changed by a failed run\n${shown}")
    endif()
endif()
