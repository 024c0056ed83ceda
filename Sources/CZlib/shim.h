#ifndef DDPM_CZLIB_SHIM_H
#define DDPM_CZLIB_SHIM_H
#include <zlib.h>
#endif
