# ODR tests: one source compiled twice into one program, under two names, once
# with the default flags and once with the flags of the *_v3fast tests. It must
# link (no duplicate definitions from the headers) and both copies must compute
# the reference's results, so the linker's choice among inline functions from
# TUs built with different flags, as in a user's program, changes nothing.

# qtensor_odr_test(<test> <main.cpp> <tu.cpp> <name for the default TU> <name for the v3 TU>)
function(qtensor_odr_test test main tu default_name v3_name)
    get_filename_component(tu_base ${tu} NAME_WE)
    set(tu_v3 ${CMAKE_CURRENT_BINARY_DIR}/${test}_${tu_base}_v3.cpp)
    configure_file(${CMAKE_CURRENT_SOURCE_DIR}/${tu} ${tu_v3} COPYONLY)
    add_executable(${test} ${main} ${tu} ${tu_v3})
    target_link_libraries(${test} PRIVATE qtensor::qtensor)
    target_compile_options(${test} PRIVATE ${QTENSOR_WARNINGS})
    target_include_directories(${test} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/odr)
    set_source_files_properties(${tu} PROPERTIES COMPILE_DEFINITIONS ODR_TU_NAME=${default_name})
    set(v3_options "")
    if(QTENSOR_CAN_RUN_X86_64_V3)
        set(v3_options "-O3;-march=x86-64-v3;-ffp-contract=fast")
    endif()
    set_source_files_properties(${tu_v3} PROPERTIES
        COMPILE_DEFINITIONS ODR_TU_NAME=${v3_name} COMPILE_OPTIONS "${v3_options}")
    add_test(NAME ${test} COMMAND ${test})
endfunction()

# The umbrella header qtensor/qtensor.hpp.
qtensor_odr_test(odr_two_tus odr/main.cpp odr/tu.cpp odr_a odr_b)

# The SIMD kernels' dispatch header: its per-target code has internal linkage.
if(QTENSOR_WITH_HIGHWAY)
    qtensor_odr_test(odr_kernels odr/kernels_main.cpp odr/kernels_tu.cpp odr_kernels_default odr_kernels_v3)
endif()

# The xsimd backend compiles for the architecture of the TU's flags, which its
# ABI namespace names: one TU on SSE2 and one on AVX2 keep their own kernels.
# And a TU on Highway beside one on xsimd (different namespaces again).
if(QTENSOR_WITH_XSIMD)
    qtensor_odr_test(odr_kernels_xsimd odr/kernels_main.cpp odr/kernels_tu.cpp odr_kernels_default odr_kernels_v3)
    target_compile_definitions(odr_kernels_xsimd PRIVATE QTENSOR_KERNELS_USE_XSIMD)
    if(QTENSOR_WITH_HIGHWAY)
        qtensor_odr_test(odr_kernels_highway_xsimd odr/kernels_main.cpp odr/kernels_tu.cpp
                         odr_kernels_default odr_kernels_v3)
        set_property(SOURCE ${CMAKE_CURRENT_BINARY_DIR}/odr_kernels_highway_xsimd_kernels_tu_v3.cpp
                     APPEND PROPERTY COMPILE_DEFINITIONS QTENSOR_KERNELS_USE_XSIMD)
    endif()
endif()
