# The training example runs end to end for a few steps: trains, saves, loads
# the checkpoint packed as Q4_0 and continues a prompt.
if(TARGET train_tiny)
    add_test(NAME example_train_tiny
        COMMAND train_tiny ${CMAKE_CURRENT_SOURCE_DIR}/data/gemma4/tiny-e2b/config.json ${PROJECT_SOURCE_DIR}/LICENSE
                ${CMAKE_CURRENT_BINARY_DIR}/train_tiny 20)
    set_tests_properties(example_train_tiny PROPERTIES
        PASS_REGULAR_EXPRESSION "step   20  loss [0-9.]+ .*\nprompt: .*\ncontinued: ")
endif()
