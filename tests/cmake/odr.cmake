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
