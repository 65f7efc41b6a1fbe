#ifndef SLUICE_CFUZZDRIVER_H
#define SLUICE_CFUZZDRIVER_H

#include <stddef.h>
#include <stdint.h>

// libFuzzer's entry for programs that keep their own main (libclang_rt.fuzzer, linked by -sanitize=fuzzer when
// SLUICE_FUZZ is set; see Package.swift). Runs the fuzzer with the command line's flags and returns its exit code.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*test_one_input)(const uint8_t *data, size_t size));

#endif
