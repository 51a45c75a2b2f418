# The QAT experiment's table (experiments/qat/summary.sh) on results whose
# figures are worked out by hand in tests/data/qat/README.md.
find_program(QTENSOR_BASH bash)
if(QTENSOR_BASH)
    add_test(NAME qat_experiment_summary
        COMMAND ${QTENSOR_BASH} ${PROJECT_SOURCE_DIR}/experiments/qat/summary.sh
                ${CMAKE_CURRENT_SOURCE_DIR}/data/qat/results.tsv 10 2)
    set_tests_properties(qat_experiment_summary PROPERTIES PASS_REGULAR_EXPRESSION
        "\\| ptq-q2_k \\| q2_k \\| 6\\.0500 \\| 6\\.0000 \\| 6\\.1000 \\| \\+49\\.39% \\|.*\
Q4_0 QAT against the f32 baseline: -1\\.23% on average \\(seeds: -1\\.25%, -1\\.22%..*\
Q4_0 QAT against the f32 control: \\+1\\.27% on average \\(seeds: \\+1\\.28%, \\+1\\.25%..*\
recovers, against the baseline: \\+75\\.00% on average \\(seeds: \\+75\\.00%, \\+75\\.00%..*\
the same against the control: \\+70\\.00% on average \\(seeds: \\+70\\.00%, \\+70\\.00%.")
    # A seed without an arm is an error, not a zero.
    add_test(NAME qat_experiment_summary_incomplete
        COMMAND ${QTENSOR_BASH} ${PROJECT_SOURCE_DIR}/experiments/qat/summary.sh
                ${CMAKE_CURRENT_SOURCE_DIR}/data/qat/incomplete.tsv 10 2)
    set_tests_properties(qat_experiment_summary_incomplete PROPERTIES WILL_FAIL TRUE)
    # The mobile policy's arms, when a run has them.
    add_test(NAME qat_experiment_summary_mobile
        COMMAND ${QTENSOR_BASH} ${PROJECT_SOURCE_DIR}/experiments/qat/summary.sh
                ${CMAKE_CURRENT_SOURCE_DIR}/data/qat/results-mobile.tsv 10 2)
    set_tests_properties(qat_experiment_summary_mobile PROPERTIES PASS_REGULAR_EXPRESSION
        "mobile: share of the PTQ gap QAT recovers, against the baseline: \\+70\\.00% on average \\(seeds: \\+70\\.00%, \\+70\\.00%.*\
mobile: the same against the control: \\+67\\.50% on average \\(seeds: \\+67\\.50%, \\+67\\.50%")
    add_test(NAME qat_experiment_summary_mobile_incomplete
        COMMAND ${QTENSOR_BASH} ${PROJECT_SOURCE_DIR}/experiments/qat/summary.sh
                ${CMAKE_CURRENT_SOURCE_DIR}/data/qat/incomplete-mobile.tsv 10 2)
    set_tests_properties(qat_experiment_summary_mobile_incomplete PROPERTIES WILL_FAIL TRUE)
endif()
