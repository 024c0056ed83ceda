#include "clshim.h"
#include <stdlib.h>
#include <string.h>

static void copy_info_string(cl_device_id device, cl_device_info what, char *out, size_t size) {
    out[0] = 0;
    if (clGetDeviceInfo(device, what, size, out, NULL) != CL_SUCCESS) out[0] = 0;
    out[size - 1] = 0;
}

int clshim_list_devices(clshim_device_info *out, int capacity, cl_int *status) {
    cl_uint platform_count = 0;
    *status = clGetPlatformIDs(0, NULL, &platform_count);
    if (*status != CL_SUCCESS || platform_count == 0) return 0;
    cl_platform_id *platforms = calloc(platform_count, sizeof(cl_platform_id));
    *status = clGetPlatformIDs(platform_count, platforms, NULL);
    int total = 0;
    for (cl_uint p = 0; p < platform_count && *status == CL_SUCCESS; p++) {
        cl_uint device_count = 0;
        cl_int err = clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, 0, NULL, &device_count);
        if (err != CL_SUCCESS || device_count == 0) continue;  // a platform without devices is not an error
        cl_device_id *devices = calloc(device_count, sizeof(cl_device_id));
        clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, device_count, devices, NULL);
        char platform_name[256] = {0};
        clGetPlatformInfo(platforms[p], CL_PLATFORM_NAME, sizeof platform_name - 1, platform_name, NULL);
        for (cl_uint d = 0; d < device_count; d++, total++) {
            if (total >= capacity) continue;
            clshim_device_info *info = &out[total];
            memset(info, 0, sizeof *info);
            info->platform = platforms[p];
            info->device = devices[d];
            strncpy(info->platform_name, platform_name, sizeof info->platform_name - 1);
            clGetDeviceInfo(devices[d], CL_DEVICE_TYPE, sizeof info->type, &info->type, NULL);
            copy_info_string(devices[d], CL_DEVICE_NAME, info->name, sizeof info->name);
            copy_info_string(devices[d], CL_DEVICE_VENDOR, info->vendor, sizeof info->vendor);
            copy_info_string(devices[d], CL_DEVICE_VERSION, info->version, sizeof info->version);
            copy_info_string(devices[d], CL_DRIVER_VERSION, info->driver_version, sizeof info->driver_version);
            clGetDeviceInfo(devices[d], CL_DEVICE_MAX_COMPUTE_UNITS, sizeof info->compute_units, &info->compute_units, NULL);
            clGetDeviceInfo(devices[d], CL_DEVICE_MAX_CLOCK_FREQUENCY, sizeof info->clock_mhz, &info->clock_mhz, NULL);
            clGetDeviceInfo(devices[d], CL_DEVICE_GLOBAL_MEM_SIZE, sizeof info->global_mem_bytes, &info->global_mem_bytes, NULL);
            clGetDeviceInfo(devices[d], CL_DEVICE_LOCAL_MEM_SIZE, sizeof info->local_mem_bytes, &info->local_mem_bytes, NULL);
            clGetDeviceInfo(devices[d], CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof info->max_work_group_size, &info->max_work_group_size, NULL);
            clGetDeviceInfo(devices[d], CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof info->max_alloc_bytes, &info->max_alloc_bytes, NULL);
            clGetDeviceInfo(devices[d], CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT, sizeof info->native_vector_width_float, &info->native_vector_width_float, NULL);
        }
        free(devices);
    }
    free(platforms);
    return total;
}

cl_program clshim_build_program(cl_context context, cl_device_id device, const char *source,
                                const char *options, char **log, cl_int *status) {
    *log = NULL;
    cl_program program = clCreateProgramWithSource(context, 1, &source, NULL, status);
    if (*status != CL_SUCCESS) return NULL;
    cl_int build_status = clBuildProgram(program, 1, &device, options, NULL, NULL);
    size_t log_size = 0;
    clGetProgramBuildInfo(program, device, CL_PROGRAM_BUILD_LOG, 0, NULL, &log_size);
    if (log_size > 1) {
        *log = malloc(log_size + 1);
        clGetProgramBuildInfo(program, device, CL_PROGRAM_BUILD_LOG, log_size, *log, NULL);
        (*log)[log_size] = 0;
    }
    *status = build_status;
    if (build_status != CL_SUCCESS) {
        clReleaseProgram(program);
        return NULL;
    }
    return program;
}

void clshim_free(void *pointer) { free(pointer); }

const char *clshim_error_name(cl_int code) {
    switch (code) {
#define NAME(c) case c: return #c;
    NAME(CL_SUCCESS) NAME(CL_DEVICE_NOT_FOUND) NAME(CL_DEVICE_NOT_AVAILABLE)
    NAME(CL_COMPILER_NOT_AVAILABLE) NAME(CL_MEM_OBJECT_ALLOCATION_FAILURE) NAME(CL_OUT_OF_RESOURCES)
    NAME(CL_OUT_OF_HOST_MEMORY) NAME(CL_PROFILING_INFO_NOT_AVAILABLE) NAME(CL_MEM_COPY_OVERLAP)
    NAME(CL_IMAGE_FORMAT_MISMATCH) NAME(CL_IMAGE_FORMAT_NOT_SUPPORTED) NAME(CL_BUILD_PROGRAM_FAILURE)
    NAME(CL_MAP_FAILURE) NAME(CL_MISALIGNED_SUB_BUFFER_OFFSET)
    NAME(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST) NAME(CL_COMPILE_PROGRAM_FAILURE)
    NAME(CL_LINKER_NOT_AVAILABLE) NAME(CL_LINK_PROGRAM_FAILURE) NAME(CL_DEVICE_PARTITION_FAILED)
    NAME(CL_KERNEL_ARG_INFO_NOT_AVAILABLE) NAME(CL_INVALID_VALUE) NAME(CL_INVALID_DEVICE_TYPE)
    NAME(CL_INVALID_PLATFORM) NAME(CL_INVALID_DEVICE) NAME(CL_INVALID_CONTEXT)
    NAME(CL_INVALID_QUEUE_PROPERTIES) NAME(CL_INVALID_COMMAND_QUEUE) NAME(CL_INVALID_HOST_PTR)
    NAME(CL_INVALID_MEM_OBJECT) NAME(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR) NAME(CL_INVALID_IMAGE_SIZE)
    NAME(CL_INVALID_SAMPLER) NAME(CL_INVALID_BINARY) NAME(CL_INVALID_BUILD_OPTIONS)
    NAME(CL_INVALID_PROGRAM) NAME(CL_INVALID_PROGRAM_EXECUTABLE) NAME(CL_INVALID_KERNEL_NAME)
    NAME(CL_INVALID_KERNEL_DEFINITION) NAME(CL_INVALID_KERNEL) NAME(CL_INVALID_ARG_INDEX)
    NAME(CL_INVALID_ARG_VALUE) NAME(CL_INVALID_ARG_SIZE) NAME(CL_INVALID_KERNEL_ARGS)
    NAME(CL_INVALID_WORK_DIMENSION) NAME(CL_INVALID_WORK_GROUP_SIZE) NAME(CL_INVALID_WORK_ITEM_SIZE)
    NAME(CL_INVALID_GLOBAL_OFFSET) NAME(CL_INVALID_EVENT_WAIT_LIST) NAME(CL_INVALID_EVENT)
    NAME(CL_INVALID_OPERATION) NAME(CL_INVALID_GL_OBJECT) NAME(CL_INVALID_BUFFER_SIZE)
    NAME(CL_INVALID_MIP_LEVEL) NAME(CL_INVALID_GLOBAL_WORK_SIZE) NAME(CL_INVALID_PROPERTY)
    NAME(CL_INVALID_IMAGE_DESCRIPTOR) NAME(CL_INVALID_COMPILER_OPTIONS) NAME(CL_INVALID_LINKER_OPTIONS)
    NAME(CL_INVALID_DEVICE_PARTITION_COUNT)
#undef NAME
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
    default: return "CL_UNKNOWN_ERROR";
    }
}
