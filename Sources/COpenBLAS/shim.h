// OpenBLAS's CBLAS for Swift. Debian: apt-get install -y libopenblas-dev.
#ifndef DISTILL_COPENBLAS_SHIM_H
#define DISTILL_COPENBLAS_SHIM_H
#include <cblas.h>
// OpenBLAS's own cblas.h declares it; a reference cblas.h found first on the include path would not.
void openblas_set_num_threads(int num_threads);
#endif
