# Overlay port: builds from the checkout this file lives in (ports/qtensor/ is two
# levels below the repository root), so "vcpkg install qtensor
# --overlay-ports=<repo>/ports" packages the working tree. A port in a registry
# would fetch a release instead:
#   vcpkg_from_github(OUT_SOURCE_PATH SOURCE_PATH REPO <owner>/qtensor REF "v${VERSION}" SHA512 <sha512> HEAD_REF main)
get_filename_component(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)

set(VCPKG_BUILD_TYPE release) # header-only: nothing differs between debug and release

vcpkg_check_features(OUT_FEATURE_OPTIONS FEATURE_OPTIONS
    FEATURES
        highway QTENSOR_WITH_HIGHWAY
        xsimd   QTENSOR_WITH_XSIMD
        json    QTENSOR_WITH_JSON
)

vcpkg_cmake_configure(
    SOURCE_PATH "${SOURCE_PATH}"
    OPTIONS
        ${FEATURE_OPTIONS}
        -DQTENSOR_BUILD_TESTS=OFF
        -DQTENSOR_BUILD_EXAMPLES=OFF
        -DQTENSOR_BUILD_TOOLS=OFF
        -DQTENSOR_BUILD_BENCH=OFF
        -DQTENSOR_INSTALL=ON
)
vcpkg_cmake_install()
# qtensor installs its config to share/cmake/qtensor; vcpkg wants share/qtensor.
vcpkg_cmake_config_fixup(PACKAGE_NAME qtensor CONFIG_PATH share/cmake/qtensor)

file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/lib")

file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
