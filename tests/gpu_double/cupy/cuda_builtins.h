// CUDA built-ins for compiling a RawKernel's source as host C++ (gpu_double).
//
// Threads run one after another: blockIdx/threadIdx are thread_local globals the launcher sets
// before each call. That is exact for kernels whose threads do not communicate; shared memory
// and barriers are refused at compile time rather than run wrongly.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <cstddef>
#include <type_traits>
#include <utility>
#include <algorithm>

#define __global__
#define __device__
#define __host__
#define __noinline__ __attribute__((noinline))
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
#define __constant__ static
#define __shared__ GPU_DOUBLE_ERROR_shared_memory_is_not_modelled
#define __syncthreads() GPU_DOUBLE_ERROR_syncthreads_is_not_modelled()
#define __syncwarp(...) GPU_DOUBLE_ERROR_warp_functions_are_not_modelled()
#define __shfl_sync(...) GPU_DOUBLE_ERROR_warp_functions_are_not_modelled()
#define __ballot_sync(...) GPU_DOUBLE_ERROR_warp_functions_are_not_modelled()

struct dim3 {
    unsigned int x, y, z;
};
struct uint3 {
    unsigned int x, y, z;
};
static thread_local uint3 blockIdx;
static thread_local uint3 threadIdx;
static thread_local dim3 blockDim;
static thread_local dim3 gridDim;
static const int warpSize = 32;

#define GPU_DOUBLE_VEC(T, N2, N4)                                                  \
    struct alignas(2 * sizeof(T)) N2 { T x, y; };                                 \
    struct alignas(4 * sizeof(T) > 16 ? 16 : 4 * sizeof(T)) N4 { T x, y, z, w; }; \
    static __forceinline__ N2 make_##N2(T x, T y) { return N2{x, y}; }             \
    static __forceinline__ N4 make_##N4(T x, T y, T z, T w) { return N4{x, y, z, w}; }
GPU_DOUBLE_VEC(int, int2, int4)
GPU_DOUBLE_VEC(unsigned int, uint2, uint4)
GPU_DOUBLE_VEC(float, float2, float4)
GPU_DOUBLE_VEC(long long, longlong2, longlong4)
GPU_DOUBLE_VEC(double, double2, double4)
#undef GPU_DOUBLE_VEC

// Read-only cache loads are plain loads.
template <typename T>
static __forceinline__ T __ldg(const T* p) { return *p; }

static __forceinline__ float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
static __forceinline__ int __float_as_int(float f) { int i; std::memcpy(&i, &f, 4); return i; }
static __forceinline__ float __uint_as_float(unsigned int i) { float f; std::memcpy(&f, &i, 4); return f; }
static __forceinline__ unsigned int __float_as_uint(float f) { unsigned int i; std::memcpy(&i, &f, 4); return i; }
static __forceinline__ double __longlong_as_double(long long i) { double f; std::memcpy(&f, &i, 8); return f; }
static __forceinline__ long long __double_as_longlong(double f) { long long i; std::memcpy(&i, &f, 8); return i; }

using std::max;
using std::min;
static __forceinline__ float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
static __forceinline__ double rsqrt(double x) { return 1.0 / std::sqrt(x); }

// Atomics: threads run one at a time, so a plain read-modify-write is exact.
template <typename T>
static __forceinline__ T atomicAdd(T* p, T v) { T old = *p; *p = old + v; return old; }
template <typename T>
static __forceinline__ T atomicSub(T* p, T v) { T old = *p; *p = old - v; return old; }
template <typename T>
static __forceinline__ T atomicMax(T* p, T v) { T old = *p; *p = old < v ? v : old; return old; }
template <typename T>
static __forceinline__ T atomicMin(T* p, T v) { T old = *p; *p = v < old ? v : old; return old; }
template <typename T>
static __forceinline__ T atomicExch(T* p, T v) { T old = *p; *p = v; return old; }
template <typename T>
static __forceinline__ T atomicCAS(T* p, T compare, T v) { T old = *p; if (old == compare) *p = v; return old; }

// The launcher: reads each parameter from its argument buffer as the driver does (by the
// parameter's own type and size), and runs the grid block by block, thread by thread.
template <typename... P, std::size_t... I>
static void gpu_double_call(void (*kernel)(P...), void** args, std::index_sequence<I...>) {
    kernel(*reinterpret_cast<typename std::remove_cv<P>::type*>(args[I])...);
}

template <typename... P>
static void gpu_double_launch(void (*kernel)(P...), const unsigned int* grid, const unsigned int* block,
                              void** args) {
    gridDim = dim3{grid[0], grid[1], grid[2]};
    blockDim = dim3{block[0], block[1], block[2]};
    for (unsigned int bz = 0; bz < grid[2]; ++bz)
        for (unsigned int by = 0; by < grid[1]; ++by)
            for (unsigned int bx = 0; bx < grid[0]; ++bx) {
                blockIdx = uint3{bx, by, bz};
                for (unsigned int tz = 0; tz < block[2]; ++tz)
                    for (unsigned int ty = 0; ty < block[1]; ++ty)
                        for (unsigned int tx = 0; tx < block[0]; ++tx) {
                            threadIdx = uint3{tx, ty, tz};
                            gpu_double_call(kernel, args, std::index_sequence_for<P...>{});
                        }
            }
}

// Parameter descriptions for the Python side: size, pointer or not, alignment of the pointee.
template <typename T>
struct gpu_double_pointee_align { static constexpr std::size_t value = 1; };
template <typename T>
struct gpu_double_pointee_align<T*> {
    static constexpr std::size_t value = alignof(typename std::conditional<std::is_void<T>::value, char, T>::type);
};

template <typename... P>
static int gpu_double_describe(void (*)(P...), long long* out) {
    const long long sizes[] = {0, (long long)sizeof(P)...};
    const long long pointers[] = {0, (long long)std::is_pointer<P>::value...};
    const long long floats[] = {0, (long long)std::is_floating_point<P>::value...};
    const long long aligns[] = {0, (long long)gpu_double_pointee_align<typename std::remove_cv<P>::type>::value...};
    const int n = sizeof...(P);
    for (int i = 0; i < n; ++i) {
        out[4 * i] = sizes[i + 1];
        out[4 * i + 1] = pointers[i + 1];
        out[4 * i + 2] = floats[i + 1];
        out[4 * i + 3] = aligns[i + 1];
    }
    return n;
}
