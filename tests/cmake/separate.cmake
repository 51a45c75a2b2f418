# Separate compilation (docs/kernels.md): one TU compiles the library
# (separate/define.cpp, QTENSOR_DEFINE), shared by the test programs whose
# other TUs only declare it; every TU has QTENSOR_SEPARATE (kernels_test.cpp
# its older name QTENSOR_KERNELS_SEPARATE).
add_library(qtensor_separate_define OBJECT separate/define.cpp)
target_link_libraries(qtensor_separate_define PRIVATE qtensor::qtensor)
target_compile_definitions(qtensor_separate_define PRIVATE QTENSOR_SEPARATE)
target_compile_options(qtensor_separate_define PRIVATE ${QTENSOR_WARNINGS})

# The kernels, called from a TU that refuses to build if it compiled any
# per-target Highway code.
add_executable(separate_kernels_test separate/kernels_test.cpp)
target_link_libraries(separate_kernels_test PRIVATE qtensor_separate_define qtensor_test_main)
target_compile_definitions(separate_kernels_test PRIVATE QTENSOR_KERNELS_SEPARATE)
target_compile_options(separate_kernels_test PRIVATE ${QTENSOR_WARNINGS})
add_test(NAME separate_kernels_test COMMAND separate_kernels_test)

if(QTENSOR_WITH_JSON)
    # The Gemma 4 model against the reference logits: model_test.cpp uses the
    # named policies (compiled by define.cpp), custom_policy_test.cpp one of
    # its own (compiled there, from model_impl.hpp).
    add_library(separate_model_tu OBJECT separate/model_test.cpp)
    add_executable(separate_model_test separate/custom_policy_test.cpp)
    foreach(target separate_model_tu separate_model_test)
        target_link_libraries(${target} PRIVATE qtensor_test_main)
        target_compile_definitions(${target} PRIVATE QTENSOR_SEPARATE)
        target_compile_options(${target} PRIVATE ${QTENSOR_WARNINGS})
        target_include_directories(${target} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}) # test_util.hpp
    endforeach()
    target_link_libraries(separate_model_test PRIVATE separate_model_tu qtensor_separate_define)
    add_test(NAME separate_model_test COMMAND separate_model_test)

    # model_test.cpp's object defines none of what define.cpp compiles: no
    # JSON parser, no forward pass, no weight loader.
    add_test(NAME separate_model_tu_is_light
        COMMAND "${CMAKE_COMMAND}" "-DNM=${CMAKE_NM}" "-DOBJECT=$<TARGET_OBJECTS:separate_model_tu>"
            "-DFORBIDDEN=nlohmann|gemma4::model<[^ ]*>::run\\(|load_weights<|safetensors_file::safetensors_file"
            -P "${CMAKE_CURRENT_SOURCE_DIR}/scripts/check_defined_symbols.cmake")
endif()
