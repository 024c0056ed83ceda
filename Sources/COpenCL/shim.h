#ifndef DDPM_COPENCL_SHIM_H
#define DDPM_COPENCL_SHIM_H
// OpenCL 1.2 is what PoCL and NVIDIA both offer; ask the headers for exactly that API.
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#endif
