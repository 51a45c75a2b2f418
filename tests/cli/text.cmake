# tests/cli/text.cmake: a model's tokenizer through the CLI, on tiny-moe (384
# token rows) with tests/data/tokenizer/tiny.model as its tokenizer.model:
#   - tokenize --text, with and without --chat, gives the ids SentencePiece
#     gives (the library that trained tiny.model printed them:
#     tests/data/tokenizer/make_fixture.py's model, encoded in Python);
#   - generate --prompt prints the text of the ids generate --ids gives for
#     the same prompt, cut at the first stop id (<eos> 1, <turn|> 5);
#   - convert carries the tokenizer into the GGUF file: the same ids from it;
#   - a directory with a tokenizer.json instead (tests/data/tokenizer's, of
#     bpe.model) gives bpe.model's ids.
#
#   -DCLI=qtensor -DMODEL=tiny-moe dir -DTOKENIZER=tests/data/tokenizer -DWORK_DIR=dir
cmake_minimum_required(VERSION 3.21)
include(${CMAKE_CURRENT_LIST_DIR}/step.cmake)

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}/model")
file(COPY "${MODEL}/config.json" "${MODEL}/model.safetensors" DESTINATION "${WORK_DIR}/model")
file(COPY_FILE "${TOKENIZER}/tiny.model" "${WORK_DIR}/model/tokenizer.model")
file(MAKE_DIRECTORY "${WORK_DIR}/json")
file(COPY "${MODEL}/config.json" "${MODEL}/model.safetensors" "${TOKENIZER}/tokenizer.json" DESTINATION "${WORK_DIR}/json")

# run(<var> args...): the command's stdout without its final newline.
function(run var)
    execute_process(COMMAND "${CLI}" ${ARGN} WORKING_DIRECTORY "${WORK_DIR}"
        RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(NOT rc STREQUAL "0")
        message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}${err}")
    endif()
    string(REGEX REPLACE "\n$" "" out "${out}")
    set(${var} "${out}" PARENT_SCOPE)
endfunction()

function(expect what got want)
    if(NOT got STREQUAL want)
        message(FATAL_ERROR "${what}:\n  got  [${got}]\n  want [${want}]")
    endif()
endfunction()

set(text "Hello world, what a day!")
set(plain_ids "2,376,335,286,337,270,278,330,356,270,343,274,264,290,323,382")
set(chat_text "Hi there")
set(chat_ids "2,4,346,341,266,16,376,340,269,268,5,16,4,348,337,345,335,344,16")
run(ids tokenize --text "${text}" model)
expect("tokenize --text" "${ids}" "${plain_ids}")
run(ids tokenize --chat --text "${chat_text}" model)
expect("tokenize --chat --text" "${ids}" "${chat_ids}")
run(back tokenize --ids 376,335,286,337,270,278,330,356,270,343,274,264,290,323,382 model)
expect("tokenize --ids" "${back}" "${text}")

# generate --prompt == the text of generate --ids, up to the first stop id.
# The random model stops after 5 tokens on the chat prompt "H" (ids by SentencePiece).
function(check_reply name chat prompt prompt_ids expect_stop)
    run(reply generate --threads 1 --max-new 24 ${chat} --prompt "${prompt}" model)
    run(generated generate --threads 1 --max-new 24 --ids ${prompt_ids} model)
    string(REPLACE "," ";" generated "${generated}")
    set(kept "")
    foreach(id IN LISTS generated)
        if(id STREQUAL "1" OR id STREQUAL "5")
            break()
        endif()
        list(APPEND kept ${id})
    endforeach()
    list(LENGTH kept n)
    if(expect_stop AND NOT n EQUAL 5)
        message(FATAL_ERROR "${name}: expected a stop id after 5 tokens in ${generated}")
    endif()
    list(JOIN kept "," kept)
    run(want tokenize --ids ${kept} model)
    expect("generate ${name}" "${reply}" "${want}")
endfunction()
check_reply(plain "" "${text}" "${plain_ids}" OFF)
check_reply(chat --chat "${chat_text}" "${chat_ids}" OFF)
check_reply(chat_stop --chat "H" "2,4,346,341,266,16,376,5,16,4,348,337,345,335,344,16" ON)

# The tokenizer in the GGUF file: same ids; inspect shows SentencePiece's model.
step("${CLI}" convert model model.gguf)
run(ids tokenize --text "${text}" model.gguf)
expect("tokenize on the GGUF file" "${ids}" "${plain_ids}")
run(listing inspect model.gguf)
if(NOT listing MATCHES "tokenizer\\.ggml\\.model \\(string\\) = \"llama\"")
    message(FATAL_ERROR "inspect model.gguf: no tokenizer.ggml.model = llama in\n${listing}")
endif()

run(ids tokenize --text "${text}" json)
expect("tokenize with a tokenizer.json" "${ids}" "2,1455,458,1416,708,1435,535,270,806,1461")
