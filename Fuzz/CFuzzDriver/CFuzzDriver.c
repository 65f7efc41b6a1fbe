// Nothing to compile: the target exists for its header (LLVMFuzzerRunDriver is libFuzzer's).
