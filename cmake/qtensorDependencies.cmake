# Finds qtensor's dependencies and gives them the target names qtensor links:
# hwy::hwy, xsimd and nlohmann_json::nlohmann_json. Used by the build and by the
# installed qtensorConfig.cmake. Expects QTENSOR_WITH_HIGHWAY / _XSIMD / _JSON to be set.
#
# A missing dependency is not fatal here: QTENSOR_MISSING_DEPENDENCY is set to a
# message instead. The build stops on it; the package config reports "not found"
# so that a consumer's find_package(qtensor QUIET) can fall back to something else.

unset(QTENSOR_MISSING_DEPENDENCY)

if(QTENSOR_WITH_HIGHWAY AND NOT TARGET hwy::hwy)
    # Highway's own config names the target hwy::hwy; Conan's CMakeDeps names the
    # package "highway" and the target highway::highway.
    find_package(hwy CONFIG QUIET)
    if(NOT TARGET hwy::hwy)
        find_package(highway CONFIG QUIET)
        if(TARGET highway::highway)
            add_library(hwy::hwy INTERFACE IMPORTED)
            target_link_libraries(hwy::hwy INTERFACE highway::highway)
        endif()
    endif()
    if(NOT TARGET hwy::hwy)
        string(APPEND QTENSOR_MISSING_DEPENDENCY
            "qtensor: Highway not found (Debian: apt-get install libhwy-dev), "
            "or configure with -DQTENSOR_WITH_HIGHWAY=OFF\n")
    endif()
endif()

if(QTENSOR_WITH_XSIMD AND NOT TARGET xsimd)
    find_package(xsimd CONFIG QUIET)
    if(NOT TARGET xsimd)
        string(APPEND QTENSOR_MISSING_DEPENDENCY
            "qtensor: xsimd not found (Debian: apt-get install libxsimd-dev), "
            "or configure with -DQTENSOR_WITH_XSIMD=OFF\n")
    endif()
endif()
if(QTENSOR_WITH_JSON AND NOT TARGET nlohmann_json::nlohmann_json)
    find_package(nlohmann_json CONFIG QUIET)
    if(NOT TARGET nlohmann_json::nlohmann_json)
        string(APPEND QTENSOR_MISSING_DEPENDENCY
            "qtensor: nlohmann-json not found (Debian: apt-get install nlohmann-json3-dev), "
            "or configure with -DQTENSOR_WITH_JSON=OFF\n")
    endif()
endif()
# Debian's xsimd 8.1 target links "xtl" without finding it (-lxtl fails to link);
# xtl is header-only and unused by the parts of xsimd we include.
if(TARGET xsimd AND NOT TARGET xtl)
    add_library(xtl INTERFACE IMPORTED)
endif()
