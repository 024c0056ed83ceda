// Open MPI, loaded at run time: ddpm-cl is built and runs without MPI, and only a process started
// by mpirun (or another PMI launcher) opens libmpi.so.40. No MPI header is needed to build this:
// the few handles used are Open MPI's exported objects (MPI_COMM_WORLD is &ompi_mpi_comm_world, …),
// looked up by name. Every function returns 0 on success, or non-zero with a message in `error`.
#ifndef MPISHIM_H
#define MPISHIM_H
#include <stddef.h>
#include <stdint.h>

/// Opens libmpi (the name, e.g. "libmpi.so.40") and looks up what is used; idempotent.
int mpishim_load(const char *library, char *error, size_t error_size);
/// MPI_Init on MPI_COMM_WORLD; its rank and size.
int mpishim_init(int *rank, int *size, char *error, size_t error_size);
int mpishim_finalize(char *error, size_t error_size);
/// In place: values[i] ← Σ over ranks of values[i] (MPI_Allreduce, MPI_FLOAT, MPI_SUM), in chunks
/// of at most 2^30 elements (MPI counts are int).
int mpishim_allreduce_sum_float(float *values, int64_t count, char *error, size_t error_size);
/// In place on doubles; op 0 sum, 1 max, 2 min.
int mpishim_allreduce_double(double *values, int count, int op, char *error, size_t error_size);
#endif
