# Sourced by scripts/fuzz.sh and scripts/fuzz-long.sh: the libFuzzer targets and the
# largest input each is given (-max_len). The bound sits well above every seed and above
# what the parsers' own limits need (JSON and TOML nesting is refused past 64 levels), so
# mutations stay on inputs the parser can tell apart instead of growing towards 64 KB
# (the old -max_len), which halved the executions per second without reaching new code.
targets=(app_op_fuzzer trace_csv_fuzzer public_trace_fuzzer cluster_toml_fuzzer
         program_toml_fuzzer journal_record_fuzzer snapshot_fuzzer decision_log_fuzzer)
fuzz_max_len() {
  case $1 in
    app_op_fuzzer | program_toml_fuzzer) echo 8192 ;;  # seeds up to 5.4 KB
    *) echo 4096 ;;                                      # seeds up to 1.7 KB
  esac
}
