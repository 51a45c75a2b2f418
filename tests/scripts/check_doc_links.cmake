# cmake -P script: the repository must stand alone. Every Markdown document
# that a text file of the repository names (a word ending in ".md", in code
# comments, docs or scripts) must exist in the repository. A name is looked up
#   1. relative to the folder of the file that names it,
#   2. relative to the repository root (so "docs/schemes.md" works anywhere),
#   3. relative to docs/ (so a header may say "schemes.md").
# URLs ("https://...") are not checked. Fails with "file:line: name" for each
# name that resolves nowhere.
#
#   SOURCE_DIR   the repository root
#
# Files: "git ls-files --cached --others --exclude-standard" when SOURCE_DIR is
# a git checkout (tracked files plus new ones not yet committed), otherwise a
# glob of the source folders. Only text files are read (by extension).
cmake_minimum_required(VERSION 3.21)

if(NOT DEFINED SOURCE_DIR)
    message(FATAL_ERROR "check_doc_links.cmake: pass -DSOURCE_DIR=...")
endif()

set(files "")
find_program(GIT_EXECUTABLE git)
if(GIT_EXECUTABLE AND EXISTS "${SOURCE_DIR}/.git")
    execute_process(
        COMMAND "${GIT_EXECUTABLE}" ls-files --cached --others --exclude-standard
        WORKING_DIRECTORY "${SOURCE_DIR}"
        OUTPUT_VARIABLE listing RESULT_VARIABLE git_status ERROR_QUIET)
    if(git_status EQUAL 0)
        string(REPLACE "\n" ";" files "${listing}")
    endif()
endif()
if(NOT files)
    file(GLOB_RECURSE files RELATIVE "${SOURCE_DIR}"
        "${SOURCE_DIR}/include/*" "${SOURCE_DIR}/tools/*" "${SOURCE_DIR}/tests/*"
        "${SOURCE_DIR}/docs/*" "${SOURCE_DIR}/examples/*" "${SOURCE_DIR}/bench/*"
        "${SOURCE_DIR}/fuzz/*" "${SOURCE_DIR}/scripts/*" "${SOURCE_DIR}/cmake/*"
        "${SOURCE_DIR}/ports/*" "${SOURCE_DIR}/test_package/*")
    file(GLOB top RELATIVE "${SOURCE_DIR}" "${SOURCE_DIR}/*.md" "${SOURCE_DIR}/CMakeLists.txt"
        "${SOURCE_DIR}/*.py" "${SOURCE_DIR}/*.json")
    list(APPEND files ${top})
endif()

set(text_file_regex "\\.(hpp|h|cpp|cc|c|cmake|md|txt|py|sh|json|in|dict|toml|yml|yaml)$|(^|/)usage$")
# A document name: letters, digits, '_', '-', '.', '/' ending in ".md". One
# extra word character is matched so that ".md5" or ".mdx" can be dropped.
set(name_regex "[A-Za-z0-9_./-]*[A-Za-z0-9_-]\\.md[A-Za-z0-9_]?")

cmake_path(SET root NORMALIZE "${SOURCE_DIR}")
set(failures "")
set(checked 0)
foreach(rel IN LISTS files)
    if(rel STREQUAL "" OR NOT rel MATCHES "${text_file_regex}" OR rel MATCHES "^build/")
        continue()
    endif()
    set(path "${SOURCE_DIR}/${rel}")
    if(NOT EXISTS "${path}" OR IS_DIRECTORY "${path}")
        continue()  # deleted in the work tree but still in the index
    endif()
    file(READ "${path}" text)
    string(FIND "${text}" ".md" any)
    if(any EQUAL -1)
        continue()
    endif()
    get_filename_component(dir "${path}" DIRECTORY)
    # One list element per line: neutralise what CMake lists treat specially.
    string(REPLACE "\\" "/" text "${text}")
    string(REPLACE ";" "," text "${text}")
    string(REPLACE "[" "(" text "${text}")
    string(REPLACE "]" ")" text "${text}")
    string(REPLACE "\r" "" text "${text}")
    string(REPLACE "\n" ";" lines "${text}")
    set(line_no 0)
    foreach(line IN LISTS lines)
        math(EXPR line_no "${line_no} + 1")
        if(NOT line MATCHES "\\.md")
            continue()
        endif()
        # Drop URLs before looking for names.
        string(REGEX REPLACE "[A-Za-z][A-Za-z0-9+.-]*://[^ \t)>\"'`]*" "" line "${line}")
        string(REGEX MATCHALL "${name_regex}" names "${line}")
        foreach(name IN LISTS names)
            if(NOT name MATCHES "\\.md$")
                continue()
            endif()
            # A path after a CMake variable ("${PROJECT_SOURCE_DIR}/docs/...") starts
            # with "/": read it as repo-relative.
            string(REGEX REPLACE "^/+" "" name "${name}")
            math(EXPR checked "${checked} + 1")
            set(found FALSE)
            foreach(base IN ITEMS "${dir}" "${SOURCE_DIR}" "${SOURCE_DIR}/docs")
                cmake_path(ABSOLUTE_PATH name BASE_DIRECTORY "${base}" NORMALIZE
                           OUTPUT_VARIABLE candidate)
                # Only a file inside the repository counts ("../shared/..." does not).
                cmake_path(IS_PREFIX root "${candidate}" NORMALIZE inside)
                if(inside AND EXISTS "${candidate}" AND NOT IS_DIRECTORY "${candidate}")
                    set(found TRUE)
                    break()
                endif()
            endforeach()
            if(found)
                continue()
            endif()
            list(APPEND failures "${rel}:${line_no}: ${name}")
        endforeach()
    endforeach()
endforeach()

if(failures)
    list(LENGTH failures count)
    list(JOIN failures "\n  " report)
    message(FATAL_ERROR "${count} mention(s) of a Markdown document the repository does not ship "
                        "(put what the reader needs into docs/ and point there):\n  ${report}")
endif()
message(STATUS "doc links: ${checked} mentions of .md documents, all present in the repository")
