# tests/cmake/cli_model.cmake: the `qtensor` commands that read checkpoints
# (inspect, convert, logits, generate), on the Hugging Face fixtures in
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

endif()
