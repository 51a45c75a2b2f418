# Separate compilation of the kernels (docs/kernels.md): one TU compiles them
# (QTENSOR_KERNELS_DEFINE), the test TU only declares them; both have
# QTENSOR_KERNELS_SEPARATE. The test TU refuses to build if it compiled any
# per-target Highway code.
add_executable(separate_kernels_test separate/kernels_test.cpp separate/kernels.cpp)
target_link_libraries(separate_kernels_test PRIVATE qtensor_test_main)
target_compile_definitions(separate_kernels_test PRIVATE QTENSOR_KERNELS_SEPARATE)
target_compile_options(separate_kernels_test PRIVATE ${QTENSOR_WARNINGS})
add_test(NAME separate_kernels_test COMMAND separate_kernels_test)
