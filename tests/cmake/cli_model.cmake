# tests/cmake/cli_model.cmake: the `qtensor` commands that read checkpoints
# (inspect, convert, logits, generate, ppl, calibrate), on the Hugging Face fixtures in
# tests/data/gemma4. Uses qtensor_cli_run / qtensor_cli_error from cli.cmake.
if(TARGET qtensor_cli AND QTENSOR_WITH_JSON)

set(gemma4_data ${CMAKE_CURRENT_SOURCE_DIR}/data/gemma4)

# Sizes from the fixture's own header: 512 x 128 float32 = 262144 bytes.
qtensor_cli_run(inspect_safetensors_dir CODE 0
    STDOUT "model\\.embed_tokens\\.weight +F32 +\\[512, 128\\] +262144\n.*total: 101 tensors"
    ARGS inspect ${gemma4_data}/tiny-e2b)
qtensor_cli_run(inspect_safetensors_int CODE 0
    STDOUT "input_ids +I64 +\\[24\\] +192\n"
    ARGS inspect ${gemma4_data}/tiny-e2b/reference.safetensors)
qtensor_cli_error(inspect_missing 1 "does not exist" inspect no/such/file)
qtensor_cli_error(inspect_not_a_checkpoint 1 "config\\.json: .*header" inspect ${gemma4_data}/tiny-e2b/config.json)

# --- convert, logits, generate on tiny-e2b ----------------------------------
# The round trip (tests/cli/model_roundtrip.cmake) also leaves the truncated
# GGUF file the corrupt-file test reads.
set(QTENSOR_CLI_MODEL_WORK ${QTENSOR_CLI_WORK}/model_roundtrip)
add_test(NAME cli_model_roundtrip COMMAND ${CMAKE_COMMAND}
    -DCLI=$<TARGET_FILE:qtensor_cli> -DUTIL=$<TARGET_FILE:qtensor_cli_testutil>
    -DMODEL=${gemma4_data}/tiny-e2b -DWORK_DIR=${QTENSOR_CLI_MODEL_WORK}
    -P ${QTENSOR_CLI_TEST_DIR}/model_roundtrip.cmake)
set_tests_properties(cli_model_roundtrip PROPERTIES FIXTURES_SETUP qtensor_cli_gguf)

set(e2b ${gemma4_data}/tiny-e2b)
# util-linux's script(1) gives a command a terminal (every Debian has it).
find_program(QTENSOR_SCRIPT_PROGRAM script)
if(QTENSOR_SCRIPT_PROGRAM)
    add_test(NAME cli_tty_progress COMMAND ${CMAKE_COMMAND}
        -DCLI=$<TARGET_FILE:qtensor_cli> -DSCRIPT=${QTENSOR_SCRIPT_PROGRAM} -DMODEL=${e2b}
        -DWORK_DIR=${QTENSOR_CLI_WORK}/tty_progress -P ${QTENSOR_CLI_TEST_DIR}/tty_progress.cmake)
endif()
qtensor_cli_run(convert_help CODE 0 STDOUT "^usage: qtensor convert \\[--policy POLICY\\].*q4_0" ARGS convert --help)
qtensor_cli_run(logits_help CODE 0 STDOUT "^usage: qtensor logits .*--ids IDS --out FILE MODEL" ARGS help logits)
qtensor_cli_run(generate_help CODE 0 STDOUT "^usage: qtensor generate .*--max-new N MODEL" ARGS generate -h)
# Greedy decoding prints exactly --max-new ids on one line, and the figures on stderr.
qtensor_cli_run(generate CODE 0 STDOUT "^[0-9]+(,[0-9]+)(,[0-9]+)(,[0-9]+)(,[0-9]+)\n$"
    STDERR "prefill 3 tokens in .* tok/s\\); decode 4 tokens in .* tok/s\\)\n.*weights .* MiB \\(.* converted or repacked, .* mapped\\); KV cache .* MiB for 8 positions; peak RSS [0-9.]+ MiB\n$"
    ARGS generate --threads 1 --ids 5,17,3 --max-new 5 ${e2b})
# A Q4_0 file's matrices: repacked by default (owned), read in place with --in-place.
qtensor_cli_run(generate_q4_0 CODE 0 STDOUT "^[0-9]+(,[0-9]+)\n$"
    STDERR "weights .* MiB \\((0\\.[0-9]*[1-9]|[1-9])[0-9.]* MiB converted or repacked"
    ARGS generate --policy q4_0 --threads 2 --ids 1 --max-new 2 ${QTENSOR_CLI_MODEL_WORK}/q4_0.gguf)
qtensor_cli_run(generate_q4_0_in_place CODE 0 STDOUT "^[0-9]+(,[0-9]+)\n$"
    STDERR "weights .* MiB \\(0\\.00 MiB converted or repacked"
    ARGS generate --policy q4_0 --in-place --threads 2 --ids 1 --max-new 2 ${QTENSOR_CLI_MODEL_WORK}/q4_0.gguf)
# --profile: a table of the decode steps' time by family, weight bytes and rates.
qtensor_cli_run(generate_profile CODE 0 STDOUT "^[0-9]+(,[0-9]+)(,[0-9]+)\n$"
    STDERR "profile of 2 decode steps, per step:\n  ops +ms +share +weights MB +GB/s\n  embedding .*\n  projections .*\n  attention .*\n  mlp .*\n  per_layer .*\n  head .*\n  other .*\n  total +[0-9.]+ +100\.0% .*\n$"
    ARGS generate --policy q4_0 --profile --threads 1 --ids 5,17,3 --max-new 3 ${e2b})
set_property(TEST cli_generate_q4_0 cli_generate_q4_0_in_place APPEND PROPERTY FIXTURES_REQUIRED qtensor_cli_gguf)
# Static activations: calibrate, then ppl, generate and logits with --scales.
add_test(NAME cli_calibrate COMMAND ${CMAKE_COMMAND}
    -DCLI=$<TARGET_FILE:qtensor_cli> -DMODEL=${e2b} -DWORK_DIR=${QTENSOR_CLI_WORK}/calibrate
    -P ${QTENSOR_CLI_TEST_DIR}/calibrate.cmake)


# Bad command lines: exit 2.
qtensor_cli_error(ids_junk 2 "^qtensor: --ids: 'x' \\(item 1\\) is not a non-negative integer"
    logits --ids 5,x,3 --out o.f32 ${e2b})
qtensor_cli_error(ids_negative 2 "^qtensor: --ids: '-1' \\(item 0\\) is not a non-negative integer"
    logits --ids -1 --out o.f32 ${e2b})
qtensor_cli_error(ids_hole 2 "^qtensor: --ids: '' \\(item 1\\) is not a non-negative integer"
    generate --ids 5,,3 --max-new 1 ${e2b})
qtensor_cli_error(ids_empty 2 "^qtensor: --ids is empty" logits --ids= --out o.f32 ${e2b})
qtensor_cli_error(ids_too_large 2 "^qtensor: --ids: '2147483648' is too large for a token id"
    logits --ids 2147483648 --out o.f32 ${e2b})
qtensor_cli_error(policy_unknown 2 "^qtensor: --policy 'q5_0' is not a policy \\(one of f32, bf16, q8_0, q4_0, q2_k, mobile; or a mix of llama-quantize's: Q2_K Q3_K_S .* Q8_0 IQ4_NL IQ4_XS\\)"
    convert --policy q5_0 ${e2b} out.gguf)
qtensor_cli_error(policy_unknown_logits 2 "^qtensor: --policy 'Q4_K_M' is not a policy \\(one of f32, bf16, q8_0, q4_0, q2_k, mobile, stored\\)"
    logits --policy Q4_K_M --ids 1 --out o.f32 ${e2b})
qtensor_cli_error(convert_lattice_mix 2 "^qtensor: convert: --lattice packs Q4_0 blocks on their grids, and the mix Q4_K_M"
    convert --lattice --policy Q4_K_M ${e2b} out.gguf)
# A mix: llama-quantize's types per tensor; tiny-e2b's rows of 128 are not
# whole K-quant blocks, so each quantized tensor falls back and says so.
qtensor_cli_run(convert_mix CODE 0 FILES out.gguf
    STDERR "model\\.layers\\.0\\.self_attn\\.q_proj\\.weight: rows of 128 are not whole q4_k blocks of 256, so q5_0\n"
    ARGS convert --policy Q4_K_M ${e2b} out.gguf)
# A policy whose scheme does not fit: the same fallback, and a note that the
# policy cannot load what was written.
qtensor_cli_run(convert_policy_fallback CODE 0 FILES out.gguf
    STDERR "self_attn\\.q_proj\\.weight: rows of 128 are not whole q2_k blocks of 256, so q4_0\n.*tensors fell back: llama\\.cpp loads the file, qtensor's policy q2_k does not"
    ARGS convert --policy q2_k ${e2b} out.gguf)
qtensor_cli_error(logits_no_out 2 "^qtensor: logits: missing --out" logits --ids 1 ${e2b})
# The stored policy runs a model as its files hold it (here f32, in place).
qtensor_cli_run(logits_stored CODE 0 FILES o.f32 ARGS logits --policy stored --ids 5,17,3 --out o.f32 ${e2b})
qtensor_cli_error(convert_stored 2 "^qtensor: --policy stored runs a model as its file holds it; this command needs a policy that names its schemes \\(one of f32, bf16, q8_0, q4_0, q2_k, mobile; or a mix"
    convert --policy stored ${e2b} out.gguf)
qtensor_cli_run(logits_help_stored CODE 0 STDOUT "  stored every weight in the type its file stores it in" ARGS logits --help)
qtensor_cli_error(generate_zero 2 "^qtensor: --max-new must be positive, got 0" generate --ids 1 --max-new 0 ${e2b})
qtensor_cli_error(ppl_no_input 2 "^qtensor: ppl: give one of --data and --ids" ppl ${e2b})
qtensor_cli_error(ppl_both_inputs 2 "^qtensor: ppl: give one of --data and --ids" ppl --ids 1,2 --data x ${e2b})
qtensor_cli_error(ppl_ctx_one 2 "^qtensor: ppl: --ctx must be at least 2" ppl --ids 1,2 --ctx 1 ${e2b})
qtensor_cli_error(convert_one_arg 2 "^qtensor: convert: expected MODEL and OUT\\.gguf, got 1" convert ${e2b})

# --- footprint on the released sizes' configs (docs/configs) ------------------
# Hand-worked from docs/gemma4.md's E2B geometry: the per-layer table is
# 262144 x (35 x 256) = 2348810240 values, 1321205760 bytes as Q4_0 (18 bytes
# per 32); the bf16 KV cache for 4096 tokens is 12 sliding layers x 2 x 512 x
# 256 x 2 bytes + 3 full layers x 2 x 4096 x 512 x 2 bytes = 31457280 bytes;
# 4096 rows of the bf16 per-layer table (17920 bytes: 5 pages of 4096, and one
# more it may straddle) are at most 4096 x 6 x 4096 = 100663296 bytes resident.
set(configs ${PROJECT_SOURCE_DIR}/docs/configs)
qtensor_cli_run(footprint_help CODE 0 STDOUT "^usage: qtensor footprint .*--text-only\\] CONFIG" ARGS footprint --help)
qtensor_cli_run(footprint_e2b CODE 0
    STDOUT "policy q4_0, embedding=q4_0\n.*per-layer table +q4_0 +1 +2348810240 +1321205760 +0\n.*vision encoder.*KV cache: +--context N counts it\n$"
    ARGS footprint --policy q4_0 --set embedding=q4_0 ${configs}/gemma4-e2b.json)
qtensor_cli_run(footprint_kv CODE 0
    STDOUT "per-layer table +bf16 +1 +2348810240 +4697620480 +100663296\n.*KV cache \\(bf16\\): +0\\.031 GB .*for 4096 tokens\n$"
    ARGS footprint --policy bf16 --context 4096 --text-only ${configs}/gemma4-e2b.json)
qtensor_cli_error(footprint_q2_k_rows 1
    "^qtensor: footprint: model\\.layers\\.0\\.mlp\\.down_proj\\.weight has rows of 2112 elements, not whole q2_k blocks of 256"
    footprint --policy q2_k ${configs}/gemma4-26b-a4b.json)
qtensor_cli_error(footprint_set_part 2 "^qtensor: footprint: --set: storage_plan: unknown part \"lm_head\""
    footprint --set lm_head=q4_0 ${configs}/gemma4-e2b.json)
qtensor_cli_error(footprint_set_form 2 "^qtensor: footprint: --set 'mlp' is not PART=SCHEME"
    footprint --set mlp ${configs}/gemma4-e2b.json)
qtensor_cli_error(footprint_context 1 "^qtensor: footprint: 200000 positions exceed the model's context of 131072"
    footprint --context 200000 ${configs}/gemma4-e2b.json)

# Failed runs: exit 1, one line, nothing left behind.
qtensor_cli_error(ids_out_of_vocab 1
    "^qtensor: gemma4::model: token id 512 at position 1 is out of range for a vocabulary of 512"
    logits --ids 3,512 --out o.f32 ${e2b})
qtensor_cli_error(model_missing 1 "^qtensor: logits: model 'no/such/model' does not exist"
    logits --ids 1 --out o.f32 no/such/model)
qtensor_cli_error(model_no_config 1 "^qtensor: .*/gemma4/config\\.json: cannot open"
    generate --ids 1 --max-new 1 ${gemma4_data})
qtensor_cli_error(context_exceeded 1 "^qtensor: generate: 301 positions exceed the model's context of 256"
    generate --ids 1 --max-new 300 ${e2b})
qtensor_cli_error(ppl_id_in_tail 1 "^qtensor: ppl: token id 600 \\(position 3\\) is outside the model's vocabulary of 512"
    ppl --ids 3,4,5,600 --ctx 3 ${e2b})
qtensor_cli_error(ppl_data_directory 1 "^qtensor: ppl: '.*' is a directory" ppl --data ${e2b} ${e2b})
qtensor_cli_error(ppl_one_token 1 "^qtensor: ppl: 1 token\\(s\\): at least 2 are needed" ppl --ids 7 ${e2b})
qtensor_cli_error(ppl_no_data 1 "^qtensor: ppl: cannot open 'no/such\\.txt'" ppl --data no/such.txt ${e2b})
qtensor_cli_error(ppl_context 1 "^qtensor: ppl: 300 positions exceed the model's context of 256"
    ppl --ids 3,4 --ctx 300 ${e2b})
qtensor_cli_error(convert_unwritable 1 "^qtensor: output no/dir/out\\.gguf: cannot create the temporary file"
    convert ${e2b} no/dir/out.gguf)
qtensor_cli_error(gguf_truncated 1 "^qtensor: .*cut\\.gguf: tensor '.*' data .* runs past the end of the file"
    logits --ids 1 --out o.f32 ${QTENSOR_CLI_MODEL_WORK}/cut.gguf)
set_property(TEST cli_gguf_truncated APPEND PROPERTY FIXTURES_REQUIRED qtensor_cli_gguf)

# --- grad: the loss and every gradient against transformers' backward ----------
# cli_<script>_<case>: tests/cli/<script>.cmake in float32 on the fixture's
# directory, on the f32 GGUF made from it (its names mapped back) and on the
# MoE fixture, against transformers' reference.safetensors within REL.
function(qtensor_cli_vs_hf script rel)
    foreach(case tiny_e2b tiny_moe tiny_e2b_gguf)
        set(model ${gemma4_data}/tiny-e2b)
        set(reference ${model}/reference.safetensors)
        if(case STREQUAL "tiny_moe")
            set(model ${gemma4_data}/tiny-moe)
            set(reference ${model}/reference.safetensors)
        elseif(case STREQUAL "tiny_e2b_gguf")
            set(model ${QTENSOR_CLI_MODEL_WORK}/f32.gguf)
        endif()
        add_test(NAME cli_${script}_${case} COMMAND ${CMAKE_COMMAND}
            -DCLI=$<TARGET_FILE:qtensor_cli> -DUTIL=$<TARGET_FILE:qtensor_cli_testutil>
            -DMODEL=${model} -DREFERENCE=${reference} -DWORK_DIR=${QTENSOR_CLI_WORK}/${script}_${case} -DREL=${rel}
            -P ${QTENSOR_CLI_TEST_DIR}/${script}.cmake)
    endforeach()
    set_property(TEST cli_${script}_tiny_e2b_gguf APPEND PROPERTY FIXTURES_REQUIRED qtensor_cli_gguf)
endfunction()
qtensor_cli_vs_hf(grad 1e-4)
qtensor_cli_run(grad_help CODE 0 STDOUT "^usage: qtensor grad --ids IDS --out FILE \\[--threads N\\] MODEL" ARGS help grad)
qtensor_cli_error(grad_one_id 2 "^qtensor: grad: --ids needs at least 2 tokens" grad --ids 5 --out g.st ${e2b})
qtensor_cli_error(grad_out_of_vocab 1 "^qtensor: gemma4::loss_and_gradients: token id 512 \\(position 1\\) is outside the vocabulary of 512"
    grad --ids 3,512 --out g.st ${e2b})

# --- text: tokenize, generate --prompt / --chat, the tokenizer in convert's GGUF ---
add_test(NAME cli_text COMMAND ${CMAKE_COMMAND} -DCLI=$<TARGET_FILE:qtensor_cli> -DMODEL=${gemma4_data}/tiny-moe
    -DTOKENIZER=${CMAKE_CURRENT_SOURCE_DIR}/data/tokenizer -DWORK_DIR=${QTENSOR_CLI_WORK}/text
    -P ${QTENSOR_CLI_TEST_DIR}/text.cmake)
qtensor_cli_error(generate_prompt_no_tokenizer 1 "^qtensor: generate: '.*tiny-e2b' has no tokenizer .*give token ids with --ids"
    generate --prompt hi --max-new 1 ${e2b})
qtensor_cli_error(generate_ids_and_prompt 2 "^qtensor: generate: give one of --ids and --prompt"
    generate --ids 1 --prompt hi --max-new 1 ${e2b})
qtensor_cli_error(generate_chat_ids 2 "^qtensor: generate: --chat needs --prompt" generate --chat --ids 1 --max-new 1 ${e2b})
qtensor_cli_error(tokenize_no_tokenizer 1 "^qtensor: tokenize: '.*tiny-e2b' has no tokenizer" tokenize --text hi ${e2b})
qtensor_cli_error(tokenize_both 2 "^qtensor: tokenize: give one of --text and --ids" tokenize ${e2b})
qtensor_cli_run(tokenize_help CODE 0 STDOUT "^usage: qtensor tokenize \\[--chat\\] --text TEXT MODEL" ARGS help tokenize)

# --- ppl: exp of the fixtures' loss; a text scores as its byte tokens -----------
qtensor_cli_vs_hf(ppl 1e-5)
add_test(NAME cli_ppl_text COMMAND ${CMAKE_COMMAND} -DCLI=$<TARGET_FILE:qtensor_cli> -DMODEL=${e2b}
    -DWORK_DIR=${QTENSOR_CLI_WORK}/ppl_text -P ${QTENSOR_CLI_TEST_DIR}/ppl_text.cmake)
qtensor_cli_run(lattice_help CODE 0 STDOUT "^usage: qtensor lattice \\[--type q4_0\\] MODEL" ARGS help lattice)
qtensor_cli_error(lattice_type 2 "^qtensor: lattice: --type 'q8_0' is not supported \\(only q4_0\\)"
    lattice --type q8_0 ${e2b})
qtensor_cli_error(convert_lattice_f32 2 "^qtensor: convert: --lattice packs Q4_0 blocks on their grids, and policy f32 stores nothing as q4_0"
    convert --lattice ${e2b} out.gguf)
qtensor_cli_run(ppl_help CODE 0 STDOUT "^usage: qtensor ppl .*--data TEXT .*--ids IDS.* MODEL\n" ARGS help ppl)

# --- train: the loss falls, a resumed run is the same run, the result is a model ---
add_test(NAME cli_train COMMAND ${CMAKE_COMMAND}
    -DCLI=$<TARGET_FILE:qtensor_cli> -DCONFIG=${e2b}/config.json -DDATA=${PROJECT_SOURCE_DIR}/LICENSE
    -DWORK_DIR=${QTENSOR_CLI_WORK}/train -P ${QTENSOR_CLI_TEST_DIR}/train.cmake)
set_tests_properties(cli_train PROPERTIES FIXTURES_SETUP qtensor_cli_train)
set(run_dir ${QTENSOR_CLI_WORK}/train/f32)
qtensor_cli_run(train_help CODE 0 STDOUT "^usage: qtensor train --data TEXT --steps N --out DIR" ARGS train --help)
qtensor_cli_error(train_no_data 2 "^qtensor: train: missing --data" train --steps 2 --out o ${e2b}/config.json)
qtensor_cli_error(train_gguf 2 "^qtensor: train: .*GGUF files cannot be trained"
    train --data ${PROJECT_SOURCE_DIR}/LICENSE --steps 2 --out o ${QTENSOR_CLI_MODEL_WORK}/f32.gguf)
set_property(TEST cli_train_gguf APPEND PROPERTY FIXTURES_REQUIRED qtensor_cli_gguf)
qtensor_cli_error(train_exists 1 "^qtensor: train: '.*' already holds a run: --resume to continue it"
    train --data ${PROJECT_SOURCE_DIR}/LICENSE --steps 2 --out ${run_dir} ${e2b}/config.json)
qtensor_cli_error(train_other_run 1 "^qtensor: train: --resume: '.*' holds another run \\(.* seq=32 .*\\); this one is .* seq=64"
    train --data ${PROJECT_SOURCE_DIR}/LICENSE --steps 12 --resume --out ${run_dir} ${e2b}/config.json)
set_property(TEST cli_train_exists cli_train_other_run APPEND PROPERTY FIXTURES_REQUIRED qtensor_cli_train)
qtensor_cli_error(train_small_data 1 "^qtensor: train: the data has [0-9]+ bytes, fewer than one window of 250"
    train --data ${e2b}/generation_config.json --steps 2 --seq 250 --out o ${e2b}/config.json)
qtensor_cli_error(train_warmup_fraction 2 "^qtensor: --warmup '2\\.9' is not a whole number"
    train --data ${PROJECT_SOURCE_DIR}/LICENSE --steps 5 --warmup 2.9 --out o ${e2b}/config.json)
qtensor_cli_error(train_over_source 2 "^qtensor: train: --out is the model being fine-tuned"
    train --data ${PROJECT_SOURCE_DIR}/LICENSE --steps 2 --out ${e2b} ${e2b})
qtensor_cli_error(train_grid_f32 2 "^qtensor: train: --grid is the rounding rule of Q4_0 weights, and policy f32 has none"
    train --data ${PROJECT_SOURCE_DIR}/LICENSE --steps 2 --grid symmetric --out o ${e2b}/config.json)
qtensor_cli_error(train_grid_name 2 "^qtensor: train: --grid 'amax7' is not ggml or symmetric"
    train --data ${PROJECT_SOURCE_DIR}/LICENSE --steps 2 --policy q4_0 --grid amax7 --out o ${e2b}/config.json)
qtensor_cli_run(fake_quant_help CODE 0 STDOUT "^usage: qtensor fake-quant --policy POLICY --out DIR" ARGS fake-quant --help)
qtensor_cli_error(fake_quant_no_policy 2 "^qtensor: fake-quant: missing --policy" fake-quant --out o ${e2b})
qtensor_cli_error(fake_quant_dtype 2 "^qtensor: fake-quant: --dtype 'f16' is not bf16 or f32"
    fake-quant --policy q4_0 --dtype f16 --out o ${e2b})
qtensor_cli_error(fake_quant_over_source 2 "^qtensor: fake-quant: --out is MODEL itself"
    fake-quant --policy q4_0 --out ${e2b} ${e2b})
qtensor_cli_error(fake_quant_gguf 2 "^qtensor: fake-quant: '.*' is not a Hugging Face model directory"
    fake-quant --policy q4_0 --out o ${QTENSOR_CLI_MODEL_WORK}/f32.gguf)
set_property(TEST cli_fake_quant_gguf APPEND PROPERTY FIXTURES_REQUIRED qtensor_cli_gguf)
qtensor_cli_error(train_grid_resume 1 "^qtensor: train: --resume: '.*' holds another run \\(.* seed=1\\); this one is .* seed=1 grid=symmetric"
    train --data ${PROJECT_SOURCE_DIR}/LICENSE --steps 12 --seq 32 --batch 2 --lr 3e-3 --policy q4_0 --grid symmetric
    --resume --out ${QTENSOR_CLI_WORK}/train/straight ${e2b}/config.json)
qtensor_cli_error(fake_quant_other_grid 2 "^qtensor: fake-quant: MODEL was trained on the ggml grid, not the symmetric one"
    fake-quant --policy q4_0 --grid symmetric --out o ${QTENSOR_CLI_WORK}/train/straight)
qtensor_cli_error(fake_quant_into_run 2 "^qtensor: fake-quant: '.*' holds a training run"
    fake-quant --policy q4_0 --out ${QTENSOR_CLI_WORK}/train/f32 ${QTENSOR_CLI_WORK}/train/straight)
set_property(TEST cli_train_grid_resume cli_fake_quant_other_grid cli_fake_quant_into_run
    APPEND PROPERTY FIXTURES_REQUIRED qtensor_cli_train)
qtensor_cli_error(train_context 1 "^qtensor: train: 300 positions exceed the model's context of 256"
    train --data ${PROJECT_SOURCE_DIR}/LICENSE --steps 2 --seq 300 --out o ${e2b}/config.json)

endif()
