# Stands in for the highway-config.cmake that Conan's CMakeDeps generates: package
# "highway", one INTERFACE target highway::highway carrying Highway's include
# directories and library. It wraps the Highway the main build found (passed in as
# QTENSOR_FAKE_HWY_LIBRARY / QTENSOR_FAKE_HWY_INCLUDE_DIRS), and adds a define so
# the consumer can tell the usage requirements really came through this target.
if(NOT TARGET highway::highway)
    add_library(highway::highway INTERFACE IMPORTED)
    set_target_properties(highway::highway PROPERTIES
        INTERFACE_INCLUDE_DIRECTORIES "${QTENSOR_FAKE_HWY_INCLUDE_DIRS}"
        INTERFACE_LINK_LIBRARIES "${QTENSOR_FAKE_HWY_LIBRARY}"
        INTERFACE_COMPILE_DEFINITIONS QTENSOR_FAKE_CONAN_HIGHWAY=1)
endif()
set(highway_FOUND TRUE)
