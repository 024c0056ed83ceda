#include "mpishim.h"
#include <dlfcn.h>
#include <stdio.h>

// Open MPI's handle types are pointers to its objects; these stand in for them.
typedef void *MPI_Comm, *MPI_Datatype, *MPI_Op;
#define MPI_IN_PLACE ((void *)1)   // Open MPI's value (mpi.h)
#define MPI_MAX_ERROR_STRING 256

static void *library_handle;
static MPI_Comm comm_world;
static MPI_Datatype type_float, type_double;
static MPI_Op op_sum, op_max, op_min;
static int (*p_init)(int *, char ***);
static int (*p_initialized)(int *);
static int (*p_finalize)(void);
static int (*p_comm_rank)(MPI_Comm, int *);
static int (*p_comm_size)(MPI_Comm, int *);
static int (*p_allreduce)(const void *, void *, int, MPI_Datatype, MPI_Op, MPI_Comm);
static int (*p_error_string)(int, char *, int *);

static int fail(char *error, size_t size, const char *what, int code) {
    char text[MPI_MAX_ERROR_STRING] = "";
    int length = 0;
    if (p_error_string && code != 0) p_error_string(code, text, &length);
    snprintf(error, size, "%s failed (%s)", what, length > 0 ? text : "no message");
    return code != 0 ? code : -1;
}

int mpishim_load(const char *library, char *error, size_t error_size) {
    if (library_handle) return 0;
    // RTLD_GLOBAL: Open MPI's plugins (mca components) resolve libmpi's symbols through it.
    void *h = dlopen(library, RTLD_NOW | RTLD_GLOBAL);
    if (!h) { snprintf(error, error_size, "%s", dlerror()); return -1; }
    struct { const char *name; void **slot; } symbols[] = {
        {"MPI_Init", (void **)&p_init}, {"MPI_Initialized", (void **)&p_initialized},
        {"MPI_Finalize", (void **)&p_finalize}, {"MPI_Comm_rank", (void **)&p_comm_rank},
        {"MPI_Comm_size", (void **)&p_comm_size}, {"MPI_Allreduce", (void **)&p_allreduce},
        {"MPI_Error_string", (void **)&p_error_string},
        {"ompi_mpi_comm_world", &comm_world}, {"ompi_mpi_float", &type_float},
        {"ompi_mpi_double", &type_double},
        {"ompi_mpi_op_sum", &op_sum}, {"ompi_mpi_op_max", &op_max}, {"ompi_mpi_op_min", &op_min},
    };
    for (size_t i = 0; i < sizeof symbols / sizeof symbols[0]; i++) {
        *symbols[i].slot = dlsym(h, symbols[i].name);
        if (!*symbols[i].slot) {
            snprintf(error, error_size, "%s has no symbol %s (ddpm-cl needs Open MPI's libmpi)", library, symbols[i].name);
            dlclose(h);
            return -1;
        }
    }
    library_handle = h;
    return 0;
}

int mpishim_init(int *rank, int *size, char *error, size_t error_size) {
    int done = 0, code;
    if (!library_handle) { snprintf(error, error_size, "libmpi is not loaded"); return -1; }
    p_initialized(&done);
    if (!done && (code = p_init(NULL, NULL)) != 0) return fail(error, error_size, "MPI_Init", code);
    if ((code = p_comm_rank(comm_world, rank)) != 0) return fail(error, error_size, "MPI_Comm_rank", code);
    if ((code = p_comm_size(comm_world, size)) != 0) return fail(error, error_size, "MPI_Comm_size", code);
    return 0;
}

int mpishim_finalize(char *error, size_t error_size) {
    int code = p_finalize();
    return code != 0 ? fail(error, error_size, "MPI_Finalize", code) : 0;
}

int mpishim_allreduce_sum_float(float *values, int64_t count, char *error, size_t error_size) {
    const int64_t chunk = (int64_t)1 << 30;
    for (int64_t start = 0; start < count; start += chunk) {
        int n = (int)(count - start < chunk ? count - start : chunk);
        int code = p_allreduce(MPI_IN_PLACE, values + start, n, type_float, op_sum, comm_world);
        if (code != 0) return fail(error, error_size, "MPI_Allreduce", code);
    }
    return 0;
}

int mpishim_allreduce_double(double *values, int count, int op, char *error, size_t error_size) {
    MPI_Op chosen = op == 1 ? op_max : op == 2 ? op_min : op_sum;
    int code = p_allreduce(MPI_IN_PLACE, values, count, type_double, chosen, comm_world);
    return code != 0 ? fail(error, error_size, "MPI_Allreduce", code) : 0;
}
