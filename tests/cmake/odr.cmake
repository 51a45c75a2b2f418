# One program from two TUs that both include qtensor/qtensor.hpp and instantiate
# the same templates (tests/odr/): it must link (no duplicate definitions from the
# headers) and compute the same bytes in both. b.cpp is compiled with the flags
# of the *_v3fast tests, so the linker keeps inline functions from TUs built with
# different flags, as it does in a user's program.
add_executable(odr_two_tus odr/main.cpp odr/a.cpp odr/b.cpp)
target_link_libraries(odr_two_tus PRIVATE qtensor::qtensor)
target_compile_options(odr_two_tus PRIVATE ${QTENSOR_WARNINGS})
if(QTENSOR_CAN_RUN_X86_64_V3)
    set_source_files_properties(odr/b.cpp PROPERTIES
        COMPILE_OPTIONS "-O3;-march=x86-64-v3;-ffp-contract=fast")
endif()
add_test(NAME odr_two_tus COMMAND odr_two_tus)

# The same for the SIMD kernels' dispatch header (tests/odr/kernels_tu.cpp,
# built twice under two names, once with -O3 -march=x86-64-v3).
if(QTENSOR_WITH_HIGHWAY)
    set(odr_kernels_v3 ${CMAKE_CURRENT_BINARY_DIR}/odr_kernels_tu_v3.cpp)
    configure_file(${CMAKE_CURRENT_SOURCE_DIR}/odr/kernels_tu.cpp ${odr_kernels_v3} COPYONLY)
    add_executable(odr_kernels odr/kernels_main.cpp odr/kernels_tu.cpp ${odr_kernels_v3})
    target_link_libraries(odr_kernels PRIVATE qtensor::qtensor)
    target_compile_options(odr_kernels PRIVATE ${QTENSOR_WARNINGS})
    set_source_files_properties(odr/kernels_tu.cpp PROPERTIES COMPILE_DEFINITIONS ODR_TU_NAME=odr_kernels_default)
    set(odr_v3_options "")
    if(QTENSOR_CAN_RUN_X86_64_V3)
        set(odr_v3_options "-O3;-march=x86-64-v3")
    endif()
    set_source_files_properties(${odr_kernels_v3} PROPERTIES
        COMPILE_DEFINITIONS ODR_TU_NAME=odr_kernels_v3 COMPILE_OPTIONS "${odr_v3_options}")
    add_test(NAME odr_kernels COMMAND odr_kernels)
endif()
