// posttrain native kernels: float32 kernels that run on the memory of the
// tfjs wasm backend (the wasm heap, an ArrayBuffer), so no tensor is copied in
// or out. Every function takes the heap and element (float) offsets into it,
// checks that each range lies inside the heap, and writes only its output
// range (decodeAttention also the one cache column it appends). The BLAS is
// OpenBLAS on Linux and Accelerate on macOS.
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

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

// decodeAttention(heap, q, k, v, cos, sin, keys, values, bias, out, batch, heads, kvHeads, headDim, capacity, column, scale)
// One decoding step's attention for every layer head, with the step's key and
// value written into the cache in place. Shapes (row-major float32):
//   q [B, H*E], k and v [B, G*E]   the step's projections, before RoPE
//   cos, sin [B, E]                RoPE tables at each row's position (HF layout)
//   keys, values [B, G, C, E]      the cache; columns [0, column) hold the past,
//                                  column `column` receives rope(k) and v
//   bias [B, column + 1]           additive key mask (0 or a large negative)
//   out [B, H*E]                   softmax(q·Kᵀ·scale + bias)·V per head
// Query head h = g*R + r (R = H/G) attends to kv head g (HF repeat_kv). RoPE is
// x*cos + rotate_half(x)*sin in float32, exactly as the tfjs ops compute it;
// the two products are the BLAS calls the unfused path makes (sgemv for one
// query head per kv head, sgemm for grouped heads), so only the softmax's
// exponentials differ from it, by float32 rounding.
Napi::Value DecodeAttention(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 17) {
    Napi::TypeError::New(env, "posttrain native decodeAttention: expected 17 arguments").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Heap heap;
  if (!GetHeap(env, info[0], &heap)) return env.Undefined();
  int64_t off[9], dim[6];
  for (size_t i = 0; i < 9; i++) {
    if (!GetInt(env, info, 1 + i, &off[i])) return env.Undefined();
  }
  for (size_t i = 0; i < 6; i++) {
    if (!GetInt(env, info, 10 + i, &dim[i])) return env.Undefined();
  }
  float scale;
  if (!GetFloat(env, info, 16, &scale)) return env.Undefined();
  const int64_t B = dim[0], H = dim[1], G = dim[2], E = dim[3], C = dim[4], P = dim[5];
  if (B < 1 || H < 1 || G < 1 || E < 2 || E % 2 != 0 || H % G != 0 || C < 1 || P < 0 || P >= C) {
    Napi::RangeError::New(env, "posttrain native decodeAttention: expected batch, heads, kvHeads >= 1 with heads a multiple of kvHeads, an even headDim >= 2 and 0 <= column < capacity; got batch " +
                                   std::to_string(B) + ", heads " + std::to_string(H) + ", kvHeads " + std::to_string(G) + ", headDim " + std::to_string(E) +
                                   ", capacity " + std::to_string(C) + ", column " + std::to_string(P))
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const int64_t K = P + 1;
  const int64_t sizes[9] = {B * H * E, B * G * E, B * G * E, B * E, B * E, B * G * C * E, B * G * C * E, B * K, B * H * E};
  static const char* names[9] = {"q", "k", "v", "cos", "sin", "keys", "values", "bias", "out"};
  for (size_t i = 0; i < 9; i++) {
    if (!InHeap(env, heap, off[i], sizes[i], names[i])) return env.Undefined();
  }
  // The output and the cache are written; they must not overlap the other operands or each other.
  for (size_t w : {5, 6, 8}) {
    for (size_t i = 0; i < 9; i++) {
      if (i == w) continue;
      const bool apart = off[w] + sizes[w] <= off[i] || off[i] + sizes[i] <= off[w];
      if (!apart) {
        Napi::RangeError::New(env, std::string("posttrain native decodeAttention: ") + names[w] + " overlaps " + names[i]).ThrowAsJavaScriptException();
        return env.Undefined();
      }
    }
  }
  float* d = heap.data;
  const int64_t R = H / G, half = E / 2;
  std::vector<float> qRot(R * E), scores(R * K);
  // rotate(x) into y: y = x*cos + rotate_half(x)*sin, rotate_half(x) = cat(-x[h:], x[:h]).
  auto rope = [&](const float* x, const float* c, const float* s, float* y) {
    for (int64_t j = 0; j < half; j++) {
      const float a = x[j] * c[j];
      const float b = (-x[j + half]) * s[j];
      y[j] = a + b;
    }
    for (int64_t j = half; j < E; j++) {
      const float a = x[j] * c[j];
      const float b = x[j - half] * s[j];
      y[j] = a + b;
    }
  };
  for (int64_t b = 0; b < B; b++) {
    const float* c = d + off[3] + b * E;
    const float* s = d + off[4] + b * E;
    const float* bias = d + off[7] + b * K;
    for (int64_t g = 0; g < G; g++) {
      float* keys = d + off[5] + (b * G + g) * C * E;    // [C, E]
      float* values = d + off[6] + (b * G + g) * C * E;  // [C, E]
      rope(d + off[1] + (b * G + g) * E, c, s, keys + P * E);
      std::copy_n(d + off[2] + (b * G + g) * E, E, values + P * E);
      for (int64_t r = 0; r < R; r++) rope(d + off[0] + (b * H + g * R + r) * E, c, s, qRot.data() + r * E);
      float* out = d + off[8] + (b * H + g * R) * E;  // [R, E]
      const int Ki = static_cast<int>(K), Ei = static_cast<int>(E), Ri = static_cast<int>(R);
      if (R == 1) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, Ki, Ei, 1.0f, keys, Ei, qRot.data(), 1, 0.0f, scores.data(), 1);  // [K,E] @ q
      } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Ri, Ki, Ei, 1.0f, qRot.data(), Ei, keys, Ei, 0.0f, scores.data(), Ki);  // [R,E] @ [K,E]^T
      }
      for (int64_t r = 0; r < R; r++) {
        float* z = scores.data() + r * K;
        float m = -INFINITY;
        for (int64_t j = 0; j < K; j++) {
          z[j] = z[j] * scale + bias[j];
          m = std::max(m, z[j]);
        }
        float sum = 0.0f;
        for (int64_t j = 0; j < K; j++) sum += z[j] = std::exp(z[j] - m);
        const float inv = 1.0f / sum;
        for (int64_t j = 0; j < K; j++) z[j] *= inv;
      }
      if (R == 1) {
        cblas_sgemv(CblasRowMajor, CblasTrans, Ki, Ei, 1.0f, values, Ei, scores.data(), 1, 0.0f, out, 1);  // [K,E]^T @ p
      } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Ri, Ei, Ki, 1.0f, scores.data(), Ki, values, Ei, 0.0f, out, Ei);  // [R,K] @ [K,E]
      }
    }
  }
  return env.Undefined();
}

// swiglu(heap, gate, up, out, n)
// out = silu(gate) * up = (gate * sigmoid(gate)) * up over n floats, in the
// order of the tfjs ops it replaces; sigmoid(x) = 1 / (1 + exp(-x)).
Napi::Value SwiGlu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 5) {
    Napi::TypeError::New(env, "posttrain native swiglu: expected 5 arguments").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Heap heap;
  int64_t gate, up, out, n;
  if (!GetHeap(env, info[0], &heap) || !GetInt(env, info, 1, &gate) || !GetInt(env, info, 2, &up) || !GetInt(env, info, 3, &out) ||
      !GetInt(env, info, 4, &n)) {
    return env.Undefined();
  }
  if (!InHeap(env, heap, gate, n, "gate") || !InHeap(env, heap, up, n, "up") || !InHeap(env, heap, out, n, "out")) return env.Undefined();
  const float* G = heap.data + gate;
  const float* U = heap.data + up;
  float* O = heap.data + out;
  for (int64_t i = 0; i < n; i++) {
    const float g = G[i];
    const float sig = 1.0f / (1.0f + std::exp(-g));
    const float silu = g * sig;
    O[i] = silu * U[i];
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
  exports.Set("decodeAttention", Napi::Function::New(env, DecodeAttention, "decodeAttention"));
  exports.Set("swiglu", Napi::Function::New(env, SwiGlu, "swiglu"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads, "setThreads"));
  exports.Set("info", Napi::Function::New(env, Info, "info"));
  return exports;
}

}  // namespace

NODE_API_MODULE(posttrain_native, Init)
