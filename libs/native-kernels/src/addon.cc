// posttrain native kernels: float32 kernels that run on the memory of the
// tfjs wasm backend (the wasm heap, an ArrayBuffer), so no tensor is copied in
// or out. Every function takes the heap and element (float) offsets into it,
// checks that each range lies inside the heap, and writes only its output
// range. The BLAS is OpenBLAS on Linux and Accelerate on macOS.
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#ifdef POSTTRAIN_ACCELERATE
#include <Accelerate/Accelerate.h>
#else
#include <cblas.h>
extern "C" {
// OpenBLAS extensions (declared in cblas-openblas.h, which not every
// distribution's cblas.h includes).
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
char* openblas_get_config(void);
}
#endif

namespace {

struct Heap {
  float* data = nullptr;
  size_t floats = 0;
};

bool GetHeap(const Napi::Env& env, const Napi::Value& v, Heap* heap) {
  if (!v.IsArrayBuffer()) {
    Napi::TypeError::New(env, "posttrain native: argument 0 must be the wasm heap ArrayBuffer").ThrowAsJavaScriptException();
    return false;
  }
  Napi::ArrayBuffer buf = v.As<Napi::ArrayBuffer>();
  heap->data = static_cast<float*>(buf.Data());
  heap->floats = buf.ByteLength() / sizeof(float);
  return true;
}

bool GetInt(const Napi::Env& env, const Napi::CallbackInfo& info, size_t i, int64_t* out) {
  if (!info[i].IsNumber()) {
    Napi::TypeError::New(env, "posttrain native: argument " + std::to_string(i) + " must be a number").ThrowAsJavaScriptException();
    return false;
  }
  *out = info[i].As<Napi::Number>().Int64Value();
  return true;
}

bool InHeap(const Napi::Env& env, const Heap& heap, int64_t offset, int64_t size, const char* what) {
  if (offset < 0 || size < 0 || static_cast<uint64_t>(offset) + static_cast<uint64_t>(size) > heap.floats) {
    Napi::RangeError::New(env, std::string("posttrain native: ") + what + " range [" + std::to_string(offset) + ", +" +
                                   std::to_string(size) + ") lies outside the wasm heap of " + std::to_string(heap.floats) + " floats")
        .ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

bool GetInt32Array(const Napi::Env& env, const Napi::Value& v, const char* what, Napi::Int32Array* out) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    Napi::TypeError::New(env, std::string("posttrain native: ") + what + " must be an Int32Array").ThrowAsJavaScriptException();
    return false;
  }
  *out = v.As<Napi::Int32Array>();
  return true;
}

// sgemm(heap, m, n, k, transA, transB, aOffsets, bOffsets, cOffset)
// For each batch entry i: C_i = op(A_i) @ op(B_i), with A_i at heap[aOffsets[i]]
// ([m,k], or [k,m] when transA), B_i at heap[bOffsets[i]] ([k,n], or [n,k] when
// transB), both row-major, and C_i = heap[cOffset + i*m*n] ([m,n]). Broadcast
// batches simply repeat an offset.
Napi::Value Sgemm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 9) {
    Napi::TypeError::New(env, "posttrain native sgemm: expected 9 arguments").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Heap heap;
  int64_t m, n, k, cOffset;
  if (!GetHeap(env, info[0], &heap) || !GetInt(env, info, 1, &m) || !GetInt(env, info, 2, &n) || !GetInt(env, info, 3, &k)) {
    return env.Undefined();
  }
  const bool transA = info[4].ToBoolean().Value();
  const bool transB = info[5].ToBoolean().Value();
  Napi::Int32Array aOffsets, bOffsets;
  if (!GetInt32Array(env, info[6], "aOffsets", &aOffsets) || !GetInt32Array(env, info[7], "bOffsets", &bOffsets) ||
      !GetInt(env, info, 8, &cOffset)) {
    return env.Undefined();
  }
  const size_t batch = aOffsets.ElementLength();
  if (bOffsets.ElementLength() != batch || m < 1 || n < 1 || k < 1) {
    Napi::RangeError::New(env, "posttrain native sgemm: offsets differ in length or a dimension is < 1").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (!InHeap(env, heap, cOffset, static_cast<int64_t>(batch) * m * n, "output")) return env.Undefined();
  for (size_t i = 0; i < batch; i++) {
    if (!InHeap(env, heap, aOffsets[i], m * k, "a") || !InHeap(env, heap, bOffsets[i], k * n, "b")) return env.Undefined();
  }
  const int M = static_cast<int>(m), N = static_cast<int>(n), K = static_cast<int>(k);
  for (size_t i = 0; i < batch; i++) {
    const float* a = heap.data + aOffsets[i];
    const float* b = heap.data + bOffsets[i];
    float* c = heap.data + cOffset + static_cast<int64_t>(i) * m * n;
    if (M == 1) {
      // One row (KV-cache decoding): a matrix-vector product. a is k
      // contiguous floats whether or not it is transposed.
      if (transB) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, N, K, 1.0f, b, K, a, 1, 0.0f, c, 1);  // [N,K] @ a
      } else {
        cblas_sgemv(CblasRowMajor, CblasTrans, K, N, 1.0f, b, N, a, 1, 0.0f, c, 1);  // [K,N]^T @ a
      }
      continue;
    }
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, a,
                transA ? M : K, b, transB ? K : N, 0.0f, c, N);
  }
  return env.Undefined();
}

bool GetFloat(const Napi::Env& env, const Napi::CallbackInfo& info, size_t i, float* out) {
  if (!info[i].IsNumber()) {
    Napi::TypeError::New(env, "posttrain native: argument " + std::to_string(i) + " must be a number").ThrowAsJavaScriptException();
    return false;
  }
  *out = static_cast<float>(info[i].As<Napi::Number>().DoubleValue());
  return true;
}

// adamw(heap, p, m, v, g, pOut, mOut, vOut, n, lr, beta1, beta2, eps, decay, bc1, bc2)
// One AdamW update of n floats, in float32 and in the order of the tfjs ops it
// replaces (AdamW in @posttrain/training), so both paths agree to rounding:
//   m' = b1 m + (1 - b1) g;  v' = b2 v + (1 - b2) g^2
//   p' = p * decay - lr * ((m' / bc1) / (sqrt(v' / bc2) + eps))
// with decay = 1 - lr * wd (1 for no decay), bc1 = 1 - b1^t, bc2 = 1 - b2^t.
Napi::Value AdamW(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 16) {
    Napi::TypeError::New(env, "posttrain native adamw: expected 16 arguments").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Heap heap;
  if (!GetHeap(env, info[0], &heap)) return env.Undefined();
  int64_t off[7], n;
  for (size_t i = 0; i < 7; i++) {
    if (!GetInt(env, info, 1 + i, &off[i])) return env.Undefined();
  }
  if (!GetInt(env, info, 8, &n)) return env.Undefined();
  float lr, b1, b2, eps, decay, bc1, bc2;
  if (!GetFloat(env, info, 9, &lr) || !GetFloat(env, info, 10, &b1) || !GetFloat(env, info, 11, &b2) || !GetFloat(env, info, 12, &eps) ||
      !GetFloat(env, info, 13, &decay) || !GetFloat(env, info, 14, &bc1) || !GetFloat(env, info, 15, &bc2)) {
    return env.Undefined();
  }
  static const char* names[7] = {"param", "m", "v", "grad", "param out", "m out", "v out"};
  for (size_t i = 0; i < 7; i++) {
    if (!InHeap(env, heap, off[i], n, names[i])) return env.Undefined();
  }
  const float* p = heap.data + off[0];
  const float* m = heap.data + off[1];
  const float* v = heap.data + off[2];
  const float* g = heap.data + off[3];
  float* pOut = heap.data + off[4];
  float* mOut = heap.data + off[5];
  float* vOut = heap.data + off[6];
  const float c1 = 1.0f - b1;  // tfjs multiplies by the float32 scalar (1 - b1)
  const float c2 = 1.0f - b2;
  for (int64_t i = 0; i < n; i++) {
    const float gi = g[i];
    const float mi = b1 * m[i] + c1 * gi;
    const float vi = b2 * v[i] + c2 * (gi * gi);
    const float update = (mi / bc1) / (std::sqrt(vi / bc2) + eps);
    const float decayed = decay == 1.0f ? p[i] : p[i] * decay;
    pOut[i] = decayed - update * lr;
    mOut[i] = mi;
    vOut[i] = vi;
  }
  return env.Undefined();
}

// rmsnorm(heap, x, w, y, rstd, rows, d, eps)
// y[i,j] = x[i,j] * rstd[i] * w[j],  rstd[i] = 1 / sqrt(mean_j x[i,j]^2 + eps).
// The sum of squares is accumulated in double (the tfjs formulation's Mean is
// a float32 sum; the difference is within float32 rounding of the result).
Napi::Value RmsNorm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 8) {
    Napi::TypeError::New(env, "posttrain native rmsnorm: expected 8 arguments").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Heap heap;
  int64_t x, w, y, r, rows, d;
  float eps;
  if (!GetHeap(env, info[0], &heap) || !GetInt(env, info, 1, &x) || !GetInt(env, info, 2, &w) || !GetInt(env, info, 3, &y) ||
      !GetInt(env, info, 4, &r) || !GetInt(env, info, 5, &rows) || !GetInt(env, info, 6, &d) || !GetFloat(env, info, 7, &eps)) {
    return env.Undefined();
  }
  if (!InHeap(env, heap, x, rows * d, "x") || !InHeap(env, heap, w, d, "weight") || !InHeap(env, heap, y, rows * d, "y") ||
      !InHeap(env, heap, r, rows, "rstd")) {
    return env.Undefined();
  }
  const float* X = heap.data + x;
  const float* W = heap.data + w;
  float* Y = heap.data + y;
  float* R = heap.data + r;
  for (int64_t i = 0; i < rows; i++) {
    const float* xi = X + i * d;
    double ss = 0;
    for (int64_t j = 0; j < d; j++) ss += static_cast<double>(xi[j]) * xi[j];
    const float rs = 1.0f / std::sqrt(static_cast<float>(ss / d) + eps);
    R[i] = rs;
    float* yi = Y + i * d;
    for (int64_t j = 0; j < d; j++) yi[j] = xi[j] * rs * W[j];
  }
  return env.Undefined();
}

// rmsnormGrad(heap, dy, x, w, rstd, dx, dw, rows, d)
// With n = x * rstd (the normalised row) and g = dy * w:
//   dw[j] = sum_i dy[i,j] n[i,j]
//   dx[i,j] = rstd[i] * (g[i,j] - n[i,j] * mean_k(g[i,k] n[i,k]))
// (d rstd / d x[i,j] = -rstd^3 x[i,j] / D).
Napi::Value RmsNormGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 9) {
    Napi::TypeError::New(env, "posttrain native rmsnormGrad: expected 9 arguments").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Heap heap;
  int64_t dy, x, w, r, dx, dw, rows, d;
  if (!GetHeap(env, info[0], &heap) || !GetInt(env, info, 1, &dy) || !GetInt(env, info, 2, &x) || !GetInt(env, info, 3, &w) ||
      !GetInt(env, info, 4, &r) || !GetInt(env, info, 5, &dx) || !GetInt(env, info, 6, &dw) || !GetInt(env, info, 7, &rows) ||
      !GetInt(env, info, 8, &d)) {
    return env.Undefined();
  }
  if (!InHeap(env, heap, dy, rows * d, "dy") || !InHeap(env, heap, x, rows * d, "x") || !InHeap(env, heap, w, d, "weight") ||
      !InHeap(env, heap, r, rows, "rstd") || !InHeap(env, heap, dx, rows * d, "dx") || !InHeap(env, heap, dw, d, "dw")) {
    return env.Undefined();
  }
  const float* DY = heap.data + dy;
  const float* X = heap.data + x;
  const float* W = heap.data + w;
  const float* R = heap.data + r;
  float* DX = heap.data + dx;
  float* DW = heap.data + dw;
  for (int64_t j = 0; j < d; j++) DW[j] = 0.0f;
  for (int64_t i = 0; i < rows; i++) {
    const float* dyi = DY + i * d;
    const float* xi = X + i * d;
    const float rs = R[i];
    double dot = 0;
    for (int64_t j = 0; j < d; j++) {
      const float n = xi[j] * rs;
      DW[j] += dyi[j] * n;
      dot += static_cast<double>(dyi[j] * W[j]) * n;
    }
    const float c = static_cast<float>(dot / d);
    float* dxi = DX + i * d;
    for (int64_t j = 0; j < d; j++) dxi[j] = rs * (dyi[j] * W[j] - xi[j] * rs * c);
  }
  return env.Undefined();
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int64_t n;
  if (!GetInt(env, info, 0, &n)) return env.Undefined();
  if (n < 1 || n > 1024) {
    Napi::RangeError::New(env, "posttrain native setThreads: expected 1..1024 threads, got " + std::to_string(n)).ThrowAsJavaScriptException();
    return env.Undefined();
  }
#ifndef POSTTRAIN_ACCELERATE
  openblas_set_num_threads(static_cast<int>(n));
#endif
  return env.Undefined();
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
#ifdef POSTTRAIN_ACCELERATE
  out.Set("blas", "Accelerate");
  out.Set("config", "Apple Accelerate (threads managed by the system)");
  out.Set("threads", env.Null());
#else
  out.Set("blas", "OpenBLAS");
  out.Set("config", std::string(openblas_get_config()));
  out.Set("threads", openblas_get_num_threads());
#endif
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("sgemm", Napi::Function::New(env, Sgemm, "sgemm"));
  exports.Set("adamw", Napi::Function::New(env, AdamW, "adamw"));
  exports.Set("rmsnorm", Napi::Function::New(env, RmsNorm, "rmsnorm"));
  exports.Set("rmsnormGrad", Napi::Function::New(env, RmsNormGrad, "rmsnormGrad"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  return exports;
}

}  // namespace

NODE_API_MODULE(posttrain_native, Init)
