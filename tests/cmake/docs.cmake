# Tests of the documentation.
#
#   docs_standalone        every Markdown document that a file of the repository
#                          names exists in the repository (the repository stands
#                          alone; tests/scripts/check_doc_links.cmake)
#   docs_install_command   the install command of docs/getting-started.md, run as
#                          written into a fresh prefix; qtensorConfig.cmake and the
#                          headers must land there (tests/scripts/check_install_doc.cmake).
#                          Label: packaging (ctest -LE packaging skips it).
add_test(NAME docs_standalone
    COMMAND "${CMAKE_COMMAND}" "-DSOURCE_DIR=${PROJECT_SOURCE_DIR}"
        -P "${CMAKE_CURRENT_SOURCE_DIR}/scripts/check_doc_links.cmake")

# The doc says to add these switches when Highway or xsimd is missing; pass
# them when this build went without the library.
set(qtensor_install_doc_extra "")
foreach(switch IN ITEMS HIGHWAY XSIMD JSON)
    if(NOT QTENSOR_WITH_${switch})
        list(APPEND qtensor_install_doc_extra "-DQTENSOR_WITH_${switch}=OFF")
    endif()
endforeach()
add_test(NAME docs_install_command
    COMMAND "${CMAKE_COMMAND}"
        "-DMARKDOWN=${PROJECT_SOURCE_DIR}/docs/getting-started.md"
        "-DSOURCE_DIR=${PROJECT_SOURCE_DIR}"
        "-DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/docs_install"
        "-DEXTRA_ARGS=${qtensor_install_doc_extra}"
        -P "${CMAKE_CURRENT_SOURCE_DIR}/scripts/check_install_doc.cmake")
set_tests_properties(docs_install_command PROPERTIES LABELS packaging TIMEOUT 300)
