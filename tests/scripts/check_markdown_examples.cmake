# cmake -P script: the code blocks of a Markdown file that are marked
#   <!-- compiled as <path> -->
#   ```cpp
#   ...
#   ```
# (the fence on the line right after the marker) must equal the file <path>
# (relative to SOURCE_ROOT) byte for byte, line endings aside.
#
#   MARKDOWN     the Markdown file
#   SOURCE_ROOT  what marker paths are relative to
#   REQUIRED     a path whose marker must be present (optional)
#   OUT_DIR      where a differing block is written, for diff (optional)
cmake_minimum_required(VERSION 3.21)

foreach(var IN ITEMS MARKDOWN SOURCE_ROOT)
    if(NOT DEFINED ${var})
        message(FATAL_ERROR "check_markdown_examples.cmake: pass -D${var}=...")
    endif()
endforeach()
get_filename_component(md_name "${MARKDOWN}" NAME)
if(NOT EXISTS "${MARKDOWN}")
    message(FATAL_ERROR "${MARKDOWN} does not exist")
endif()

# Plain string operations throughout: C++ code is full of ';' and '[', which
# CMake lists would split on.
file(READ "${MARKDOWN}" rest)
string(REPLACE "\r\n" "\n" rest "${rest}")
set(marker_open "<!-- compiled as ")
set(checked "")
set(failures 0)
while(TRUE)
    string(FIND "${rest}" "${marker_open}" at)
    if(at EQUAL -1)
        break()
    endif()
    string(LENGTH "${marker_open}" open_len)
    math(EXPR at "${at} + ${open_len}")
    string(SUBSTRING "${rest}" ${at} -1 rest)
    string(FIND "${rest}" " -->\n" close)
    if(close EQUAL -1)
        message(FATAL_ERROR "${md_name}: a '${marker_open}' marker is not closed by ' -->' at the end of its line")
    endif()
    string(SUBSTRING "${rest}" 0 ${close} path)
    math(EXPR close "${close} + 5")
    string(SUBSTRING "${rest}" ${close} -1 rest)
    set(marker "${marker_open}${path} -->")
    string(APPEND checked "${path}\n")

    # The block: "```cpp\n" right away, then everything up to a line "```".
    string(FIND "${rest}" "```cpp\n" fence)
    if(NOT fence EQUAL 0)
        message(SEND_ERROR "${md_name} has no block after the marker ${marker}: "
                           "the next line must open a ```cpp fence")
        math(EXPR failures "${failures} + 1")
        continue()
    endif()
    string(SUBSTRING "${rest}" 7 -1 rest)
    string(FIND "\n${rest}" "\n```" end)
    if(end EQUAL -1)
        message(FATAL_ERROR "${md_name}: the ```cpp block after ${marker} is never closed")
    endif()
    string(SUBSTRING "${rest}" 0 ${end} block)
    string(SUBSTRING "${rest}" ${end} -1 rest)

    if(NOT EXISTS "${SOURCE_ROOT}/${path}")
        message(SEND_ERROR "${md_name}: ${marker} names a file that does not exist")
        math(EXPR failures "${failures} + 1")
        continue()
    endif()
    file(READ "${SOURCE_ROOT}/${path}" source)
    string(REPLACE "\r\n" "\n" source "${source}")
    if(block STREQUAL source)
        message(STATUS "${md_name}: the block after ${marker} matches ${path}")
        continue()
    endif()

    math(EXPR failures "${failures} + 1")
    set(hint "")
    if(DEFINED OUT_DIR)
        string(MAKE_C_IDENTIFIER "${path}" block_file)
        set(block_file "${OUT_DIR}/${block_file}.from_${md_name}")
        file(WRITE "${block_file}" "${block}")
        find_program(DIFF_PROGRAM diff)
        if(DIFF_PROGRAM)
            execute_process(COMMAND "${DIFF_PROGRAM}" -u "${SOURCE_ROOT}/${path}" "${block_file}")
        endif()
        set(hint " (the block is in ${block_file}; diff above: - file, + ${md_name})")
    endif()
    message(SEND_ERROR "${md_name}: the block after ${marker} differs from ${path}${hint}. "
                       "Make them identical.")
endwhile()

if(DEFINED REQUIRED)
    string(FIND "\n${checked}" "\n${REQUIRED}\n" found)
    if(found EQUAL -1)
        message(SEND_ERROR "${md_name} has no block after the marker ${marker_open}${REQUIRED} -->: "
                           "put that line right before the ```cpp block")
        math(EXPR failures "${failures} + 1")
    endif()
endif()
if(checked STREQUAL "" AND NOT DEFINED REQUIRED)
    message(FATAL_ERROR "${md_name} has no '${marker_open}<path> -->' marker")
endif()
if(failures GREATER 0)
    message(FATAL_ERROR "${failures} Markdown example(s) out of sync")
endif()
