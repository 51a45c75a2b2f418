# tests/cmake/cli.cmake: tests of the `qtensor` command-line tool (target
# qtensor_cli, built when QTENSOR_BUILD_TOOLS is ON). Every run goes through a
# CMake script that fails on a crash, so an error case passes only with the
# right exit status and a one-line "qtensor: ..." message.
if(TARGET qtensor_cli)

set(QTENSOR_CLI_TEST_DIR ${CMAKE_CURRENT_LIST_DIR}/../cli)
set(QTENSOR_CLI_WORK ${CMAKE_CURRENT_BINARY_DIR}/cli)
set(QTENSOR_CLI_INPUTS ${QTENSOR_CLI_WORK}/inputs)

add_executable(qtensor_cli_testutil ${QTENSOR_CLI_TEST_DIR}/testutil.cpp)
target_compile_features(qtensor_cli_testutil PRIVATE cxx_std_20)
target_compile_options(qtensor_cli_testutil PRIVATE ${QTENSOR_WARNINGS})

add_test(NAME cli_setup COMMAND ${CMAKE_COMMAND}
    -DUTIL=$<TARGET_FILE:qtensor_cli_testutil> -DDIR=${QTENSOR_CLI_INPUTS}
    -P ${QTENSOR_CLI_TEST_DIR}/setup.cmake)
set_tests_properties(cli_setup PROPERTIES FIXTURES_SETUP qtensor_cli_inputs)

# qtensor_cli_run(<name> CODE <status> [STDERR <regex>] [STDOUT <regex>]
#                 [ONE_LINE] [KEEP <file>] [FILES <file>...] ARGS <arg>...)
# Registers cli_<name>: runs qtensor ARGS in a fresh directory; see run_cli.cmake.
function(qtensor_cli_run name)
    cmake_parse_arguments(PARSE_ARGV 1 arg "ONE_LINE" "CODE;STDERR;STDOUT;KEEP" "FILES;ARGS")
    # Quoted on the add_test line itself: a list kept in a variable would be
    # split into separate arguments there.
    add_test(NAME cli_${name} COMMAND ${CMAKE_COMMAND}
        -DCLI=$<TARGET_FILE:qtensor_cli> "-DARGS=${arg_ARGS}" -DEXPECT_CODE=${arg_CODE}
        -DWORK_DIR=${QTENSOR_CLI_WORK}/${name} -DONE_LINE=${arg_ONE_LINE}
        "-DSTDERR_REGEX=${arg_STDERR}" "-DSTDOUT_REGEX=${arg_STDOUT}" "-DKEEP=${arg_KEEP}"
        "-DEXPECT_FILES=${arg_FILES}"
        -P ${QTENSOR_CLI_TEST_DIR}/run_cli.cmake)
    set_tests_properties(cli_${name} PROPERTIES FIXTURES_REQUIRED qtensor_cli_inputs)
endfunction()

# qtensor_cli_error(<name> <status> <stderr regex> <arg>...): a failure with a
# one-line message that leaves nothing behind.
function(qtensor_cli_error name code regex)
    qtensor_cli_run(${name} CODE ${code} STDERR "${regex}" ONE_LINE ARGS ${ARGN})
endfunction()

set(in ${QTENSOR_CLI_INPUTS})

# --- round trips ----------------------------------------------------------
# Bytes per row of 512 elements, from the table in docs/gguf.md section 3:
# 512 / block elements * block bytes.
set(QTENSOR_CLI_ROW_BYTES_q4_0 288)  # 16 blocks x 18
set(QTENSOR_CLI_ROW_BYTES_q8_0 544)  # 16 x 34
set(QTENSOR_CLI_ROW_BYTES_q2_k 168)  # 2 super-blocks x 84
set(QTENSOR_CLI_ROW_BYTES_q4_k 288)  # 2 x 144
set(QTENSOR_CLI_ROW_BYTES_q8_k 584)  # 2 x 292
set(QTENSOR_CLI_ROW_BYTES_f32 2048)
set(QTENSOR_CLI_ROW_BYTES_f16 1024)
set(QTENSOR_CLI_ROW_BYTES_bf16 1024)
foreach(type IN ITEMS q4_0 q8_0 q2_k q4_k q8_k f32 f16 bf16)
    add_test(NAME cli_roundtrip_${type} COMMAND ${CMAKE_COMMAND}
        -DCLI=$<TARGET_FILE:qtensor_cli> -DUTIL=$<TARGET_FILE:qtensor_cli_testutil>
        -DWORK_DIR=${QTENSOR_CLI_WORK}/roundtrip_${type} -DTYPE=${type}
        -DROWS=7 -DCOLS=512 -DROW_BYTES=${QTENSOR_CLI_ROW_BYTES_${type}}
        -P ${QTENSOR_CLI_TEST_DIR}/roundtrip.cmake)
endforeach()

# --- byte-exact layout, derived by hand from docs/schemes.md ------------------
# Q4_0 (section 6): d = signed max / -8 stored as fp16 LE, id = 1/d,
# code = min(15, trunc(x * id + 8.5)), byte j = code[j] | code[j + 16] << 4.
# Two rows of 64 (two blocks each), row r at r * 36:
#   A: all zero. max = +0, d = 0 / -8 = -0.0 -> 00 80; id = 0, codes 8 -> 0x88.
#      Back: (8 - 8) * -0.0 = -0.0.
#   B: x[j] = (j % 16) - 8. max = -8 (element 0), d = 1.0 -> 00 3C; code = x + 8
#      = j % 16, so byte j = j | j << 4: 00 11 22 ... FF. Back: exactly x.
#   C: d = 4 / -8 = -0.5 (element 5's 4 beats element 6's -4: first wins)
#      -> 00 B8, id = -2. x * id + 8.5 -> code:
#        j0  0.25 -> 8.0 -> 8      j1 -0.25 -> 9.0 -> 9    j2 -0.75 -> 10.0 -> 10
#        j3  0.5  -> 7.5 -> 7      j4  1.0  -> 6.5 -> 6    j5  4    -> 0.5  -> 0
#        j6 -4    -> 16.5 -> 16, clamped to 15             j7  3.75 -> 1.0  -> 1
#        j16 -2   -> 12.5 -> 12    j31 1.25 -> 6.0 -> 6    zeros    -> 8.5  -> 8
#      bytes: C8 89 8A 87 86 80 8F 81, 88 x 7, 68 (code[15] = 8 | code[31] = 6 << 4).
#      Back: (code - 8) * -0.5: -0 -0.5 -1 0.5 1 4 -3.5 3.5, -0 x 8, -2, -0 x 14, 1.
#   D: all 1.0. max = 1, d = -0.125 -> 00 B0, id = -8, 1 * -8 + 8.5 = 0.5 -> 0:
#      bytes 00. Back: (0 - 8) * -0.125 = 1.0.
set(q4_0_b -8 -7 -6 -5 -4 -3 -2 -1 0 1 2 3 4 5 6 7)
set(q4_0_c 0.25 -0.25 -0.75 0.5 1 4 -4 3.75 0*8 -2 0*14 1.25)
set(q4_0_c_back -0 -0.5 -1 0.5 1 4 -3.5 3.5 -0*8 -2 -0*14 1)
add_test(NAME cli_layout_q4_0 COMMAND ${CMAKE_COMMAND}
    -DCLI=$<TARGET_FILE:qtensor_cli> -DUTIL=$<TARGET_FILE:qtensor_cli_testutil>
    -DWORK_DIR=${QTENSOR_CLI_WORK}/layout_q4_0 -DTYPE=q4_0 -DCOLS=64
    "-DFLOATS=0*32;${q4_0_b};${q4_0_b};${q4_0_c};1*32"
    "-DBYTES=00;80;88*16;00;3C;00;11;22;33;44;55;66;77;88;99;AA;BB;CC;DD;EE;FF;00;B8;C8;89;8A;87;86;80;8F;81;88*7;68;00;B0;00*16"
    "-DBACK=-0*32;${q4_0_b};${q4_0_b};${q4_0_c_back};1*32"
    -P ${QTENSOR_CLI_TEST_DIR}/layout.cmake)

# Q8_0 (section 5): d = amax / 127 as fp16 LE, q = roundf(x / d) (ties away
# from zero) as int8. One row of 96 (three blocks):
#   E: amax 127 -> d = 1.0 -> 00 3C; 127 -0.5 0.5 2.5 -2.5 -127 1.49 -1.51, zeros
#      -> 127 -1 1 3 -3 -127 1 -2 0...: 7F FF 01 03 FD 81 01 FE 00 x 24. Back: the codes.
#   F: all zero: amax 0 -> d = +0.0 -> 00 00, codes 0. Back: 0 * 0 = +0.
#   G: amax 63.5 -> d = 0.5 -> 00 38, id = 2: -63.5 31.75 0.25 -0.25 -> -127 63.5->64
#      0.5->1 -0.5->-1: 81 40 01 FF, 00 x 28. Back: -63.5 32 0.5 -0.5 0...
add_test(NAME cli_layout_q8_0 COMMAND ${CMAKE_COMMAND}
    -DCLI=$<TARGET_FILE:qtensor_cli> -DUTIL=$<TARGET_FILE:qtensor_cli_testutil>
    -DWORK_DIR=${QTENSOR_CLI_WORK}/layout_q8_0 -DTYPE=q8_0 -DCOLS=96
    "-DFLOATS=127;-0.5;0.5;2.5;-2.5;-127;1.49;-1.51;0*24;0*32;-63.5;31.75;0.25;-0.25;0*28"
    "-DBYTES=00;3C;7F;FF;01;03;FD;81;01;FE;00*24;00;00;00*32;00;38;81;40;01;FF;00*28"
    "-DBACK=127;-1;1;3;-3;-127;1;-2;0*24;0*32;-63.5;32;0.5;-0.5;0*28"
    -P ${QTENSOR_CLI_TEST_DIR}/layout.cmake)

# --- help, usage, success edge cases ----------------------------------------
qtensor_cli_run(help CODE 0 STDOUT "^usage: qtensor <command>.*quantize.*dequantize" ARGS --help)
qtensor_cli_run(quantize_help CODE 0 STDOUT "^usage: qtensor quantize --type T --cols N.*q4_0.*q8_0"
    ARGS quantize --help)
qtensor_cli_run(dequantize_help CODE 0 STDOUT "^usage: qtensor dequantize --type T --cols N"
    ARGS help dequantize)
qtensor_cli_run(no_args CODE 2 STDERR "^usage: qtensor <command>" ARGS)
qtensor_cli_run(version CODE 0 STDOUT "^qtensor [0-9]+\\.[0-9]+\\.[0-9]+\n$" ARGS --version)
qtensor_cli_run(verbose CODE 0 FILES out.bin
    STDERR "qtensor: quantize: 2 rows of 64 columns, f32 \\(512 bytes\\) -> q4_0 \\(72 bytes\\)"
    ARGS quantize -t Q4_0 -c 64 -v ${in}/good.f32 out.bin)
qtensor_cli_run(empty_input CODE 0 FILES out.bin ARGS quantize --type=q8_0 --cols=32 ${in}/empty.f32 out.bin)
qtensor_cli_run(replaces_output CODE 0 FILES out.bin ARGS quantize -t q8_0 -c 64 ${in}/good.f32 out.bin)

# --- bad command lines: exit 2 ----------------------------------------------
qtensor_cli_error(unknown_command 2 "^qtensor: unknown command 'frobnicate'" frobnicate)
qtensor_cli_error(unknown_global_option 2 "^qtensor: unknown option '--frob'" --frob)
qtensor_cli_error(unknown_option 2 "^qtensor: quantize: unknown option '--bogus'"
    quantize -t q4_0 -c 64 --bogus ${in}/good.f32 out.bin)
qtensor_cli_error(option_needs_value 2 "^qtensor: quantize: --type needs a value"
    quantize -c 64 ${in}/good.f32 out.bin --type)
qtensor_cli_error(option_twice 2 "^qtensor: quantize: --type given more than once"
    quantize -t q4_0 --type q8_0 -c 64 ${in}/good.f32 out.bin)
qtensor_cli_error(flag_with_value 2 "^qtensor: dequantize: --verbose takes no value"
    dequantize -t q4_0 -c 64 --verbose=yes ${in}/good.f32 out.f32)
qtensor_cli_error(missing_type 2 "^qtensor: quantize: missing --type \\(one of q4_0, q8_0"
    quantize -c 64 ${in}/good.f32 out.bin)
qtensor_cli_error(missing_cols 2 "^qtensor: dequantize: missing --cols"
    dequantize -t q4_0 ${in}/good.f32 out.f32)
qtensor_cli_error(missing_file 2 "^qtensor: quantize: expected 2 files \\(IN OUT\\), got 1"
    quantize -t q4_0 -c 64 ${in}/good.f32)
qtensor_cli_error(extra_file 2 "^qtensor: quantize: expected 2 files \\(IN OUT\\), got 3"
    quantize -t q4_0 -c 64 ${in}/good.f32 out.bin more.bin)
qtensor_cli_error(unknown_type 2 "^qtensor: unknown type 'q8_1' \\(valid: q4_0, q8_0, .*f16"
    quantize -t q8_1 -c 64 ${in}/good.f32 out.bin)
qtensor_cli_error(cols_not_number 2 "^qtensor: --cols 'abc' is not a positive integer"
    quantize -t q4_0 -c abc ${in}/good.f32 out.bin)
qtensor_cli_error(cols_trailing 2 "^qtensor: --cols '64x' is not a positive integer"
    quantize -t q4_0 -c 64x ${in}/good.f32 out.bin)
qtensor_cli_error(cols_negative 2 "^qtensor: --cols '-64' is not a positive integer"
    quantize -t q4_0 -c -64 ${in}/good.f32 out.bin)
qtensor_cli_error(cols_empty 2 "^qtensor: --cols '' is not a positive integer"
    quantize -t q4_0 --cols= ${in}/good.f32 out.bin)
qtensor_cli_error(cols_zero 2 "^qtensor: --cols must be positive"
    quantize -t q4_0 -c 0 ${in}/good.f32 out.bin)
qtensor_cli_error(cols_overflow 2 "^qtensor: --cols '99999999999999999999999' is too large"
    quantize -t q4_0 -c 99999999999999999999999 ${in}/good.f32 out.bin)
# 2^62 fits in 64 bits, but a float32 row of 2^62 columns takes 2^64 bytes.
qtensor_cli_error(cols_row_overflow 2 "^qtensor: --cols '4611686018427387904' is too large"
    dequantize -t q4_0 -c 4611686018427387904 ${in}/good.f32 out.f32)
qtensor_cli_error(cols_not_block_multiple 2 "^qtensor: --cols 48 is not a multiple of the q4_0 block size 32"
    quantize -t q4_0 -c 48 ${in}/good.f32 out.bin)

# --- failed runs: exit 1, nothing left behind -------------------------------
qtensor_cli_error(input_size 1
    "^qtensor: .*odd\\.f32: 100 bytes is not a whole number of rows of 128 bytes \\(32 f32 columns per row\\)"
    quantize -t q4_0 -c 32 ${in}/odd.f32 out.bin)
qtensor_cli_error(dequantize_input_size 1
    "^qtensor: .*short\\.q4_0: 40 bytes is not a whole number of rows of 36 bytes \\(64 q4_0 columns per row\\)"
    dequantize -t q4_0 -c 64 ${in}/short.q4_0 out.f32)
qtensor_cli_error(input_missing 1 "^qtensor: cannot open input '.*no_such\\.f32': No such file"
    quantize -t q4_0 -c 64 ${in}/no_such.f32 out.bin)
qtensor_cli_error(input_directory 1 "^qtensor: cannot read input '.*': it is a directory"
    quantize -t q4_0 -c 64 ${in} out.bin)
qtensor_cli_error(output_unwritable 1 "^qtensor: output no/such/dir/out\\.bin: cannot create the temporary file .*: No such file"
    quantize -t q4_0 -c 64 ${in}/good.f32 no/such/dir/out.bin)
qtensor_cli_error(output_directory 1 "^qtensor: output .*: is a directory"
    quantize -t q4_0 -c 64 ${in}/good.f32 ${in})
qtensor_cli_error(nan_input 1 "^qtensor: row 1: q4_0: element 3 is NaN"
    quantize -t q4_0 -c 32 ${in}/nan.f32 out.bin)
qtensor_cli_error(inf_input 1 "^qtensor: row 1: q8_0: element 0 is infinite"
    quantize -t q8_0 -c 32 ${in}/inf.f32 out.bin)
qtensor_cli_error(scale_overflow 1 "^qtensor: row 0: q4_0: block 0 needs scale .*fp16 range"
    quantize -t q4_0 -c 32 ${in}/huge.f32 out.bin)
# The NaN is in row 1, after row 0 was written: the old out.bin must survive.
qtensor_cli_run(failure_keeps_old_output CODE 1 ONE_LINE KEEP out.bin
    STDERR "^qtensor: row 1: q4_0: element 3 is NaN"
    ARGS quantize -t q4_0 -c 32 ${in}/nan.f32 out.bin)

# Byte-exact against ggml for every type: tests/data/ggml_golden holds ggml's
# own output for the same input (see its README). Not q4_1 and q5_1: rows 161
# and 162 have block minimums below -65504, which ggml stores as fp16 -inf and
# the CLI rejects (scheme_golden_test checks those rows throw).
foreach(type IN ITEMS q4_0 q8_0 q5_0 q2_k q3_k q4_k q5_k q6_k q8_k iq4_nl iq4_xs)
    add_test(NAME cli_golden_${type} COMMAND ${CMAKE_COMMAND}
        -DCLI=$<TARGET_FILE:qtensor_cli> -DTYPE=${type}
        -DGOLDEN=${CMAKE_CURRENT_LIST_DIR}/../data/ggml_golden
        -DWORK_DIR=${QTENSOR_CLI_WORK}/golden_${type}
        -P ${QTENSOR_CLI_TEST_DIR}/golden.cmake)
endforeach()

# The tool as a process, where a script cannot set the scene: outputs that
# are FIFOs, links or sockets, signals during a write, escape sequences in names.
add_executable(cli_process_test ${QTENSOR_CLI_TEST_DIR}/process_test.cpp)
target_link_libraries(cli_process_test PRIVATE qtensor_test_main)
target_include_directories(cli_process_test PRIVATE ${CMAKE_CURRENT_LIST_DIR}/..)
target_compile_options(cli_process_test PRIVATE ${QTENSOR_WARNINGS})
target_compile_definitions(cli_process_test PRIVATE QTENSOR_CLI_PATH="$<TARGET_FILE:qtensor_cli>")
add_dependencies(cli_process_test qtensor_cli)
add_test(NAME cli_process COMMAND cli_process_test)
# A broken FIFO rule shows as a hang: fail it in minutes, not ctest's 25.
set_tests_properties(cli_process PROPERTIES TIMEOUT 180)

endif()
