#ifndef DDPM_CLAPACK_SHIM_H
#define DDPM_CLAPACK_SHIM_H
// LAPACK's C interface (Debian liblapacke-dev): the symmetric eigensolver behind the Fréchet distance.
#include <lapacke.h>
#endif
