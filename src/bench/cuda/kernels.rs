//! The NVRTC source of gantry's own kernels: copy, triad and an empty kernel for launch latency.

pub(super) const KERNELS: &str = r#"
extern "C" __global__ void copy4(const float4* __restrict__ a, float4* __restrict__ b,
                                 unsigned long long n) {
    unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x;
    unsigned long long stride = (unsigned long long)gridDim.x * blockDim.x;
    for (; i < n; i += stride) b[i] = a[i];
}
extern "C" __global__ void triad4(const float4* __restrict__ a, const float4* __restrict__ b,
                                  float4* __restrict__ c, float s, unsigned long long n) {
    unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x;
    unsigned long long stride = (unsigned long long)gridDim.x * blockDim.x;
    for (; i < n; i += stride) {
        float4 x = a[i];
        float4 y = b[i];
        float4 r;
        r.x = x.x + s * y.x; r.y = x.y + s * y.y; r.z = x.z + s * y.z; r.w = x.w + s * y.w;
        c[i] = r;
    }
}
extern "C" __global__ void empty() {}
"#;
