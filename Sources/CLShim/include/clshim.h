#ifndef DDPM_CLSHIM_H
#define DDPM_CLSHIM_H
// A thin C layer over OpenCL 1.2: device listing across platforms, program builds that return the
// driver's log, and readable names for error codes. Swift wraps these in DDPMOpenCL.
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stddef.h>

typedef struct {
    cl_platform_id platform;
    cl_device_id device;
    cl_device_type type;
    char name[256];
    char vendor[256];
    char platform_name[256];
    char version[128];          // CL_DEVICE_VERSION, e.g. "OpenCL 1.2 pocl ..."
    char driver_version[128];
    cl_uint compute_units;
    cl_uint clock_mhz;
    cl_ulong global_mem_bytes;
    cl_ulong local_mem_bytes;
    size_t max_work_group_size;
    cl_ulong max_alloc_bytes;       // CL_DEVICE_MAX_MEM_ALLOC_SIZE
    cl_uint native_vector_width_float; // CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT: SIMD lanes of a float register
} clshim_device_info;

/// Fills up to `capacity` entries (platform order, then device order) and returns how many devices
/// exist in total. A missing ICD or no platform gives 0 with *status set to the CL error.
int clshim_list_devices(clshim_device_info *out, int capacity, cl_int *status);

/// Builds `source` for one device. On failure returns NULL, sets *status, and sets *log to the
/// driver's build log (malloc'd, free with clshim_free). On success *log may hold warnings.
cl_program clshim_build_program(cl_context context, cl_device_id device, const char *source,
                                const char *options, char **log, cl_int *status);

/// "CL_OUT_OF_RESOURCES" for -5 and so on; "CL_UNKNOWN_ERROR" for codes the spec does not name.
const char *clshim_error_name(cl_int code);

void clshim_free(void *pointer);

#endif
