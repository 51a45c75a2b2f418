# cmake -P script: install qtensor the way a package manager does, into a fresh
# prefix, and check what landed there. Run by the packaging_install test.
#
#   SOURCE_DIR   qtensor's source tree
#   WORK_DIR     scratch folder (wiped): build/, stage/ and the final prefix/
#   GENERATOR, CXX_COMPILER, WITH_HIGHWAY, WITH_XSIMD   as in the main build
#
# Steps: configure the source with tests, examples and tools off (as the vcpkg
# port and a plain "cmake --install" user do), install into WORK_DIR/stage, then
# move stage to WORK_DIR/prefix: consumers use the moved copy, which proves the
# package is relocatable (no absolute paths baked into it).
cmake_minimum_required(VERSION 3.21)

foreach(var IN ITEMS SOURCE_DIR WORK_DIR GENERATOR CXX_COMPILER WITH_HIGHWAY WITH_XSIMD)
    if(NOT DEFINED ${var})
        message(FATAL_ERROR "install_package.cmake: pass -D${var}=...")
    endif()
endforeach()

set(build "${WORK_DIR}/build")
set(stage "${WORK_DIR}/stage")
set(prefix "${WORK_DIR}/prefix")
file(REMOVE_RECURSE "${WORK_DIR}")

execute_process(
    COMMAND "${CMAKE_COMMAND}" -S "${SOURCE_DIR}" -B "${build}" -G "${GENERATOR}"
            "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}" -DCMAKE_BUILD_TYPE=Release
            "-DCMAKE_INSTALL_PREFIX=${stage}"
            -DQTENSOR_BUILD_TESTS=OFF -DQTENSOR_BUILD_EXAMPLES=OFF
            -DQTENSOR_BUILD_TOOLS=OFF -DQTENSOR_BUILD_BENCH=OFF -DQTENSOR_INSTALL=ON
            "-DQTENSOR_WITH_HIGHWAY=${WITH_HIGHWAY}" "-DQTENSOR_WITH_XSIMD=${WITH_XSIMD}"
    COMMAND_ERROR_IS_FATAL ANY)
execute_process(COMMAND "${CMAKE_COMMAND}" --build "${build}" COMMAND_ERROR_IS_FATAL ANY)
execute_process(COMMAND "${CMAKE_COMMAND}" --install "${build}" COMMAND_ERROR_IS_FATAL ANY)

# The installed headers are exactly the source headers.
file(GLOB_RECURSE source_headers RELATIVE "${SOURCE_DIR}/include" "${SOURCE_DIR}/include/*")
file(GLOB_RECURSE installed_headers RELATIVE "${stage}/include" "${stage}/include/*")
list(SORT source_headers)
list(SORT installed_headers)
if(NOT source_headers STREQUAL installed_headers)
    message(FATAL_ERROR "installed headers differ from include/:\n"
                        "source:    ${source_headers}\ninstalled: ${installed_headers}")
endif()

set(config_dir "${stage}/share/cmake/qtensor")
foreach(file IN ITEMS qtensorConfig.cmake qtensorConfigVersion.cmake qtensorTargets.cmake
                      qtensorDependencies.cmake)
    if(NOT EXISTS "${config_dir}/${file}")
        message(FATAL_ERROR "install is missing share/cmake/qtensor/${file}")
    endif()
endforeach()
# A header-only package installs no libraries or programs.
foreach(dir IN ITEMS bin lib lib64)
    if(EXISTS "${stage}/${dir}")
        message(FATAL_ERROR "install of a header-only library created ${dir}/")
    endif()
endforeach()

# Relocatable: no file of the package names the source, build or install folder.
file(GLOB_RECURSE config_files "${config_dir}/*")
foreach(file IN LISTS config_files)
    file(READ "${file}" text)
    foreach(path IN ITEMS "${SOURCE_DIR}" "${WORK_DIR}")
        string(FIND "${text}" "${path}" at)
        if(at GREATER_EQUAL 0)
            message(FATAL_ERROR "${file} contains the absolute path ${path}")
        endif()
    endforeach()
endforeach()

file(RENAME "${stage}" "${prefix}")
message(STATUS "qtensor installed to ${prefix}")
