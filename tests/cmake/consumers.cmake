# Packaging tests: qtensor used the ways downstream projects use it.
#
#   packaging_install             configure the source with tests off, install to a
#                                 fresh prefix, check the files, move the prefix
#                                 (fixture qtensor_installed; tests/scripts/install_package.cmake)
#   packaging_find_package        tests/consumers/find_package against that prefix
#   packaging_conan_test_package  test_package/ (the Conan recipe's test) against that prefix
#   packaging_conan_highway       find_package consumer where Highway exists only as
#                                 Conan's highway::highway (qtensorDependencies.cmake's mapping)
#   packaging_add_subdirectory    tests/consumers/add_subdirectory: vendored source
#                                 tree; asserts that qtensor adds no tests/examples/tools
#
# Each consumer is configured, built and run by "ctest --build-and-test" in its own
# fresh build folder under <build>/tests/packaging/. Label: packaging
# (ctest -LE packaging skips them).

set(qtensor_packaging_dir "${CMAKE_CURRENT_BINARY_DIR}/packaging")
set(qtensor_prefix "${qtensor_packaging_dir}/install/prefix")
set(qtensor_consumers "${CMAKE_CURRENT_SOURCE_DIR}/consumers")

add_test(NAME packaging_install
    COMMAND "${CMAKE_COMMAND}"
        "-DSOURCE_DIR=${PROJECT_SOURCE_DIR}"
        "-DWORK_DIR=${qtensor_packaging_dir}/install"
        "-DGENERATOR=${CMAKE_GENERATOR}"
        "-DCXX_COMPILER=${CMAKE_CXX_COMPILER}"
        "-DWITH_HIGHWAY=${QTENSOR_WITH_HIGHWAY}"
        "-DWITH_XSIMD=${QTENSOR_WITH_XSIMD}"
        -P "${CMAKE_CURRENT_SOURCE_DIR}/scripts/install_package.cmake")
set_tests_properties(packaging_install PROPERTIES
    FIXTURES_SETUP qtensor_installed LABELS packaging TIMEOUT 300)

# What every consumer configure gets: the same compiler, flags (sanitizers
# included) and build type, and the dependency packages the main build found.
set(qtensor_consumer_options
    "-DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}"
    "-DCMAKE_CXX_FLAGS=${CMAKE_CXX_FLAGS}"
    "-DQTENSOR_EXPECT_HIGHWAY=${QTENSOR_WITH_HIGHWAY}"
    "-DQTENSOR_EXPECT_XSIMD=${QTENSOR_WITH_XSIMD}")
if(CMAKE_BUILD_TYPE)
    list(APPEND qtensor_consumer_options "-DCMAKE_BUILD_TYPE=${CMAKE_BUILD_TYPE}")
endif()
foreach(package IN ITEMS hwy highway xsimd)
    if(${package}_DIR)
        list(APPEND qtensor_consumer_options "-D${package}_DIR=${${package}_DIR}")
    endif()
endforeach()
if(CMAKE_VERSION VERSION_GREATER_EQUAL 3.24)
    list(PREPEND qtensor_consumer_options --fresh)  # never reuse a previous run's cache
endif()
get_property(qtensor_multi_config GLOBAL PROPERTY GENERATOR_IS_MULTI_CONFIG)

# qtensor_add_consumer_test(<test name> <source dir> <program> <configure options>...)
function(qtensor_add_consumer_test name source program)
    set(config_args)
    if(qtensor_multi_config)
        set(config_args --build-config $<CONFIG>)
    endif()
    add_test(NAME ${name}
        COMMAND "${CMAKE_CTEST_COMMAND}" --build-and-test "${source}"
            "${qtensor_packaging_dir}/${name}"
            --build-generator "${CMAKE_GENERATOR}"
            --build-makeprogram "${CMAKE_MAKE_PROGRAM}"
            --build-noclean ${config_args}
            --build-options ${qtensor_consumer_options} ${ARGN}
            --test-command ${program})
    set_tests_properties(${name} PROPERTIES LABELS packaging TIMEOUT 300)
endfunction()

qtensor_add_consumer_test(packaging_find_package "${qtensor_consumers}/find_package" consumer
    "-DCMAKE_PREFIX_PATH=${qtensor_prefix}" "-DQTENSOR_EXPECTED_PREFIX=${qtensor_prefix}")
set_tests_properties(packaging_find_package PROPERTIES FIXTURES_REQUIRED qtensor_installed)

# test_package/ is what "conan create" builds against the Conan package; its
# CMake project and program also work against the CMake install.
qtensor_add_consumer_test(packaging_conan_test_package "${PROJECT_SOURCE_DIR}/test_package"
    test_package "-DCMAKE_PREFIX_PATH=${qtensor_prefix}")
set_tests_properties(packaging_conan_test_package PROPERTIES FIXTURES_REQUIRED qtensor_installed)

# Conan's CMakeDeps names Highway's package "highway" and its target
# highway::highway; qtensorDependencies.cmake must turn that into hwy::hwy. Faked
# by hiding hwy's own config and offering tests/consumers/fake_conan_highway,
# which wraps the Highway library the main build linked.
if(QTENSOR_WITH_HIGHWAY)
    get_target_property(qtensor_hwy_type hwy::hwy TYPE)
    if(qtensor_hwy_type MATCHES "^(SHARED|STATIC|UNKNOWN)_LIBRARY$")
        qtensor_add_consumer_test(packaging_conan_highway "${qtensor_consumers}/find_package" consumer
            "-DCMAKE_PREFIX_PATH=${qtensor_prefix}" "-DQTENSOR_EXPECTED_PREFIX=${qtensor_prefix}"
            -DCMAKE_DISABLE_FIND_PACKAGE_hwy=ON -DQTENSOR_EXPECT_CONAN_HIGHWAY=ON
            "-Dhighway_DIR=${qtensor_consumers}/fake_conan_highway"
            "-DQTENSOR_FAKE_HWY_LIBRARY=$<TARGET_LINKER_FILE:hwy::hwy>"
            "-DQTENSOR_FAKE_HWY_INCLUDE_DIRS=$<JOIN:$<TARGET_PROPERTY:hwy::hwy,INTERFACE_INCLUDE_DIRECTORIES>,$<SEMICOLON>>")
        set_tests_properties(packaging_conan_highway PROPERTIES FIXTURES_REQUIRED qtensor_installed)
    else()
        message(STATUS "packaging_conan_highway skipped: hwy::hwy is itself an ${qtensor_hwy_type}")
    endif()
endif()

qtensor_add_consumer_test(packaging_add_subdirectory "${qtensor_consumers}/add_subdirectory" consumer
    "-DQTENSOR_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
