// libFuzzer's entry point for programs that have a main of their own (compiler-rt's
// FuzzerInterface.h). The fuzz targets call it from their main.swift, after handling their own
// options, so that SwiftPM's executable entry point stays the program's main.
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
