// A stand-in for libcuda.so.1 with the prototypes of cuda.h, for testing the
// package's purego bindings where there is no GPU: "device memory" is host
// memory, and every call that needs a context checks that the primary context
// is current on the calling thread, as the real driver does. Each thread has
// a stack of current contexts, as in the driver: cuCtxSetCurrent replaces the
// top, cuCtxPushCurrent/cuCtxPopCurrent push and pop; stub_other_context is a
// second context standing for another library's, for the tests.
// Build: cc -shared -fPIC -o libcuda.so.1 stubcuda.c
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef struct CUctx_st *CUcontext;
typedef struct CUstream_st *CUstream;
typedef struct { char reserved[64]; } CUipcMemHandle;
typedef struct { char bytes[16]; } CUuuid;

enum {
	CUDA_SUCCESS = 0,
	CUDA_ERROR_INVALID_VALUE = 1,
	CUDA_ERROR_OUT_OF_MEMORY = 2,
	CUDA_ERROR_NOT_INITIALIZED = 3,
	CUDA_ERROR_INVALID_DEVICE = 101,
	CUDA_ERROR_INVALID_CONTEXT = 201,
};

static struct CUctx_st { int magic; } primary = {42}, other = {43};
static __thread CUcontext stack[16];
static __thread int depth;
#define CURRENT (depth ? stack[depth - 1] : 0)
static int initialised, retained;
#ifndef STUB_TOTAL_GIB
#define STUB_TOTAL_GIB 1
#endif
static const size_t total = (size_t)STUB_TOTAL_GIB << 30;
static size_t used;

#define NEED_CTX do { if (!initialised) return CUDA_ERROR_NOT_INITIALIZED; \
	if (CURRENT != &primary || retained == 0) return CUDA_ERROR_INVALID_CONTEXT; } while (0)

CUresult cuGetErrorName(CUresult e, const char **s) {
	switch (e) {
	case CUDA_SUCCESS: *s = "CUDA_SUCCESS"; return 0;
	case CUDA_ERROR_INVALID_VALUE: *s = "CUDA_ERROR_INVALID_VALUE"; return 0;
	case CUDA_ERROR_OUT_OF_MEMORY: *s = "CUDA_ERROR_OUT_OF_MEMORY"; return 0;
	case CUDA_ERROR_NOT_INITIALIZED: *s = "CUDA_ERROR_NOT_INITIALIZED"; return 0;
	case CUDA_ERROR_INVALID_DEVICE: *s = "CUDA_ERROR_INVALID_DEVICE"; return 0;
	case CUDA_ERROR_INVALID_CONTEXT: *s = "CUDA_ERROR_INVALID_CONTEXT"; return 0;
	}
	*s = 0;
	return CUDA_ERROR_INVALID_VALUE;
}
CUresult cuGetErrorString(CUresult e, const char **s) {
	switch (e) {
	case CUDA_ERROR_OUT_OF_MEMORY: *s = "out of memory"; return 0;
	case CUDA_ERROR_INVALID_CONTEXT: *s = "invalid device context"; return 0;
	}
	return cuGetErrorName(e, s);
}
CUresult cuInit(unsigned int flags) { if (flags != 0) return CUDA_ERROR_INVALID_VALUE; initialised = 1; return 0; }
CUresult cuDriverGetVersion(int *v) { *v = 12040; return 0; }
CUresult cuDeviceGetCount(int *n) { if (!initialised) return CUDA_ERROR_NOT_INITIALIZED; *n = 1; return 0; }
CUresult cuDeviceGet(CUdevice *d, int ordinal) { if (ordinal != 0) return CUDA_ERROR_INVALID_DEVICE; *d = 7; return 0; }
CUresult cuDeviceGetName(char *name, int len, CUdevice d) {
	if (d != 7 || len < 9) return CUDA_ERROR_INVALID_VALUE;
	strcpy(name, "Stub GPU");
	return 0;
}
CUresult cuDeviceTotalMem_v2(size_t *b, CUdevice d) { if (d != 7) return CUDA_ERROR_INVALID_DEVICE; *b = total; return 0; }
CUresult cuDevicePrimaryCtxRetain(CUcontext *c, CUdevice d) { if (d != 7) return CUDA_ERROR_INVALID_DEVICE; retained++; *c = &primary; return 0; }
CUresult cuDevicePrimaryCtxRelease_v2(CUdevice d) { if (d != 7 || retained == 0) return CUDA_ERROR_INVALID_DEVICE; retained--; return 0; }
CUresult cuDeviceGetUuid_v2(CUuuid *u, CUdevice d) {
	if (d != 7) return CUDA_ERROR_INVALID_DEVICE;
	for (int i = 0; i < 16; i++) u->bytes[i] = (char)(0x10 + i);
	return 0;
}
static int known(CUcontext c) { return c == &primary || c == &other; }
CUcontext stub_other_context(void) { return &other; }
CUresult cuCtxSetCurrent(CUcontext c) {
	if (c == 0) { if (depth) depth--; return 0; }
	if (!known(c)) return CUDA_ERROR_INVALID_CONTEXT;
	if (depth) stack[depth - 1] = c; else stack[depth++] = c;
	return 0;
}
CUresult cuCtxGetCurrent(CUcontext *c) { *c = CURRENT; return 0; }
CUresult cuCtxPushCurrent_v2(CUcontext c) {
	if (!known(c) || depth == 16) return CUDA_ERROR_INVALID_CONTEXT;
	stack[depth++] = c;
	return 0;
}
CUresult cuCtxPopCurrent_v2(CUcontext *c) {
	if (!depth) return CUDA_ERROR_INVALID_CONTEXT;
	CUcontext top = stack[--depth];
	if (c) *c = top;
	return 0;
}
CUresult cuMemGetInfo_v2(size_t *free, size_t *t) { NEED_CTX; *free = total - used; *t = total; return 0; }

// Allocations carry their size in a header, so frees can be checked.
CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t n) {
	NEED_CTX;
	if (n == 0) return CUDA_ERROR_INVALID_VALUE;
	if (n > total - used) return CUDA_ERROR_OUT_OF_MEMORY;
	size_t *h = malloc(n + 256);
	if (!h) return CUDA_ERROR_OUT_OF_MEMORY;
	h[0] = n; h[1] = 0xdeadbeef;
	used += n;
	*p = (CUdeviceptr)(uintptr_t)((char *)h + 256);
	return 0;
}
CUresult cuMemFree_v2(CUdeviceptr p) {
	NEED_CTX;
	size_t *h = (size_t *)((char *)(uintptr_t)p - 256);
	if (h[1] != 0xdeadbeef) return CUDA_ERROR_INVALID_VALUE;
	h[1] = 0;
	used -= h[0];
	free(h);
	return 0;
}
CUresult cuMemHostAlloc(void **pp, size_t n, unsigned int flags) {
	NEED_CTX;
	if (flags & ~0x7u) return CUDA_ERROR_INVALID_VALUE;
	*pp = malloc(n);
	return *pp ? 0 : CUDA_ERROR_OUT_OF_MEMORY;
}
CUresult cuMemFreeHost(void *p) { NEED_CTX; free(p); return 0; }
CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t n) { NEED_CTX; memcpy((void *)(uintptr_t)dst, src, n); return 0; }
CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t n) { NEED_CTX; memcpy(dst, (void *)(uintptr_t)src, n); return 0; }
CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t n) { NEED_CTX; memmove((void *)(uintptr_t)dst, (void *)(uintptr_t)src, n); return 0; }
CUresult cuMemsetD8_v2(CUdeviceptr dst, unsigned char v, size_t n) { NEED_CTX; memset((void *)(uintptr_t)dst, v, n); return 0; }

static struct CUstream_st { int magic; } streams[64];
static int nstreams;
CUresult cuStreamCreate(CUstream *s, unsigned int flags) {
	NEED_CTX;
	if (flags > 1 || nstreams == 64) return CUDA_ERROR_INVALID_VALUE;
	for (int i = 0; i < 64; i++) if (!streams[i].magic) { streams[i].magic = 1; nstreams++; *s = &streams[i]; return 0; }
	return CUDA_ERROR_INVALID_VALUE;
}
static int valid(CUstream s) { return s >= streams && s < streams + 64 && s->magic; }
// Stream 0 is the legacy default stream.
CUresult cuStreamSynchronize(CUstream s) { NEED_CTX; return s == 0 || valid(s) ? 0 : CUDA_ERROR_INVALID_VALUE; }
CUresult cuStreamDestroy_v2(CUstream s) { NEED_CTX; if (!valid(s)) return CUDA_ERROR_INVALID_VALUE; s->magic = 0; nstreams--; return 0; }
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t n, CUstream s) {
	NEED_CTX;
	if (!valid(s)) return CUDA_ERROR_INVALID_VALUE;
	memcpy((void *)(uintptr_t)dst, src, n);
	return 0;
}
CUresult cuMemcpyDtoHAsync_v2(void *dst, CUdeviceptr src, size_t n, CUstream s) {
	NEED_CTX;
	if (!valid(s)) return CUDA_ERROR_INVALID_VALUE;
	memcpy(dst, (void *)(uintptr_t)src, n);
	return 0;
}
CUresult cuIpcGetMemHandle(CUipcMemHandle *h, CUdeviceptr p) {
	NEED_CTX;
	memset(h->reserved, 0, 64);
	memcpy(h->reserved, "stub", 4);
	memcpy(h->reserved + 8, &p, sizeof p);
	return 0;
}

// For the test: what is still held.
int stub_outstanding(void) { return (used != 0) + nstreams + retained; }
