# tests/cli/calibrate.cmake: `qtensor calibrate` writes one static scale per
# site; ppl, logits and generate run with them (--scales), which changes the
# products' rounding, and refuse a file that is not scales for the model;
# train --scales rehearses them (another loss), for quantized policies only.
#
#   -DCLI=qtensor -DMODEL=model_dir -DWORK_DIR=dir
cmake_minimum_required(VERSION 3.21)

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
set(ids 5,17,3,250,9,511,42,42,7,300,1,128,64,65,66,67)

# run(OUT ERR EXPECTED_RC args...)
function(run out err want)
    execute_process(COMMAND "${CLI}" ${ARGN} WORKING_DIRECTORY "${WORK_DIR}"
        RESULT_VARIABLE rc OUTPUT_VARIABLE o ERROR_VARIABLE e)
    if(NOT rc STREQUAL "${want}")
        message(FATAL_ERROR "qtensor ${ARGN}: exit ${rc}, expected ${want}: ${o} ${e}")
    endif()
    set(${out} "${o}" PARENT_SCOPE)
    set(${err} "${e}" PARENT_SCOPE)
endfunction()

run(out err 0 calibrate --policy q8_0 --ids ${ids} --ctx 8 --out scales.json --threads 1 "${MODEL}")
if(NOT err MATCHES "qtensor: calibrate: 38 sites over 2 chunks of up to 8 tokens; the widest, [a-z_.0-9]+, [0-9.e+-]+ \\(largest magnitude [0-9.e+-]+\\) -> 'scales\\.json'\n$")
    message(FATAL_ERROR "calibrate's summary: '${err}'")
endif()
# tiny-e2b: 6 layers x 6 sites, the per-layer model projection and the head.
file(READ "${WORK_DIR}/scales.json" scales)
if(NOT scales MATCHES "\"format\": \"qtensor activation scales\"" OR NOT scales MATCHES "\"layers\\.5\\.per_layer_projection\": "
   OR NOT scales MATCHES "\"lm_head\": ")
    message(FATAL_ERROR "scales.json: '${scales}'")
endif()

run(dynamic err 0 ppl --policy q8_0 --ids ${ids} --ctx 8 --threads 1 "${MODEL}")
run(fixed err 0 ppl --policy q8_0 --ids ${ids} --ctx 8 --threads 1 --scales scales.json "${MODEL}")
if(NOT fixed MATCHES "^perplexity: [0-9.]+\n$" OR fixed STREQUAL dynamic)
    message(FATAL_ERROR "ppl with the scales: '${fixed}', without: '${dynamic}' (expected another figure)")
endif()
run(out err 0 generate --policy q8_0 --ids 5,17,3 --max-new 3 --threads 1 --scales scales.json "${MODEL}")
if(NOT out MATCHES "^[0-9]+,[0-9]+,[0-9]+\n$")
    message(FATAL_ERROR "generate with the scales: '${out}'")
endif()

file(WRITE "${WORK_DIR}/bad.json" "{\"format\": \"qtensor activation scales\", \"scales\": {\"layers.9.mlp\": 0.5}}")
run(out err 1 ppl --policy q8_0 --ids ${ids} --scales bad.json "${MODEL}")
if(NOT err MATCHES "\"layers\\.9\\.mlp\" is no site of a model with 6 layers")
    message(FATAL_ERROR "a scale for a layer the model lacks: '${err}'")
endif()
file(WRITE "${WORK_DIR}/few.json" "{\"format\": \"qtensor activation scales\", \"scales\": {\"lm_head\": 0.5}}")
run(out err 1 logits --policy q8_0 --ids 5,17 --out l.f32 --scales few.json "${MODEL}")
if(NOT err MATCHES "no activation scale for layers\\.0\\.attention")
    message(FATAL_ERROR "scales missing sites: '${err}'")
endif()
run(out err 2 calibrate --ids ${ids} "${MODEL}")
if(NOT err MATCHES "calibrate: missing --out")
    message(FATAL_ERROR "calibrate without --out: '${err}'")
endif()

# Training with the scales: the forward rounds the inputs too, so the first step's loss moves.
file(WRITE "${WORK_DIR}/text.txt" "the quick brown fox jumps over the lazy dog; pack my box with five dozen liquor jugs.\n")
foreach(arm plain fixed)
    set(extra)
    if(arm STREQUAL "fixed")
        set(extra --scales scales.json)
    endif()
    run(out err 0 train --data text.txt --steps 1 --out ${arm} --policy q8_0 --seq 8 --batch 1 --threads 1 ${extra} "${MODEL}")
    file(STRINGS "${WORK_DIR}/${arm}/loss.tsv" rows)
    list(GET rows 1 row)
    string(REGEX MATCH "^1\t[0-9.]+" loss_${arm} "${row}")
endforeach()
if(NOT err MATCHES "policy q8_0, static activations" OR NOT loss_fixed OR loss_fixed STREQUAL loss_plain)
    message(FATAL_ERROR "train --scales: '${err}'; first losses '${loss_plain}' and '${loss_fixed}'")
endif()
foreach(policy f32 bf16)
    run(out err 2 train --data text.txt --steps 1 --out f --policy ${policy} --scales scales.json "${MODEL}")
    if(NOT err MATCHES "policy ${policy} quantizes no weight")
        message(FATAL_ERROR "train --scales with ${policy}: '${err}'")
    endif()
endforeach()
run(out err 1 train --data text.txt --steps 1 --out few --policy q8_0 --scales few.json "${MODEL}")
if(NOT err MATCHES "no activation scale for layers\\.0\\.attention")
    message(FATAL_ERROR "train with scales missing sites: '${err}'")
endif()
