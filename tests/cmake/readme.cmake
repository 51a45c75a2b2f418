# The README's example is a real program: examples/readme_example.cpp is built
# by examples/CMakeLists.txt and run here (readme_example_runs), and
# readme_example_in_sync fails when README.md's code block differs from it.
# Marker format in README.md (the fence must be on the very next line):
#   <!-- compiled as examples/readme_example.cpp -->
#   ```cpp
#   ...the file's exact contents...
#   ```
add_test(NAME readme_example_in_sync
    COMMAND "${CMAKE_COMMAND}"
        "-DMARKDOWN=${PROJECT_SOURCE_DIR}/README.md"
        "-DSOURCE_ROOT=${PROJECT_SOURCE_DIR}"
        -DREQUIRED=examples/readme_example.cpp
        "-DOUT_DIR=${CMAKE_CURRENT_BINARY_DIR}/readme"
        -P "${CMAKE_CURRENT_SOURCE_DIR}/scripts/check_markdown_examples.cmake")

if(TARGET readme_example)
    add_test(NAME readme_example_runs COMMAND readme_example)
endif()
