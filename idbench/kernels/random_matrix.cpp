// The dense projection's random entries, drawn by a counter-based generator, and its products
// computed from entries regenerated on the fly (an adjoint may keep the rows it drew for the next
// product), for CPU tensors; and the rejection attempts of Fastfood's chi-distributed entries.
//
// Entry (i, j) depends only on the key, i and j (see random_matrix.py, whose pure-torch twin
// draws the very same bits): Philox4x32-10 (Salmon et al. 2011) of the counter
// (8 * (j / 32) + j % 8, i mod 2^32, i / 2^32, 0) gives four 32-bit words w0..w3, and entry j uses
// word k = (j % 32) / 8. Gaussian entries are Box-Muller pairs (w0, w1) -> k = 0, 1 and
// (w2, w3) -> k = 2, 3, with Cephes' float polynomials for log, sin and cos; uniform entries
// are (2 (w >> 9) + 1) 2^-23 - 1; Bernoulli entries are +-1 by the top bit. Any row, or any block
// of 32 columns, can be drawn alone, so the products run in parallel over rows with no stored
// matrix, and 1 or many threads give the same bits.
//
// Built with -ffp-contract=off: every multiply and add rounds on its own, as in torch.

#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#if defined(__AVX2__)
#include <immintrin.h>
#endif
#include <vector>

namespace {

typedef float f8 __attribute__((vector_size(32), aligned(4), may_alias));
typedef uint32_t u8 __attribute__((vector_size(32)));
typedef int32_t i8 __attribute__((vector_size(32)));

constexpr int64_t kBlock = 32;      // columns drawn together: 8 counters x 4 words
constexpr int64_t kRowBlock = 256;  // rows whose adjoint shares are summed before the cross-block sum

enum Distribution { kGaussian = 0, kUniform = 1, kBernoulli = 2 };

inline f8 splat(float v) { return f8{v, v, v, v, v, v, v, v}; }
inline u8 splat_u(uint32_t v) { return u8{v, v, v, v, v, v, v, v}; }

// (hi, lo) 32-bit halves of the 64-bit products a * m, lane by lane. With AVX2 the even and the
// odd lanes go through one 32 x 32 -> 64-bit multiply each (the generic vector code compiles to
// a 64 x 64-bit multiply emulated by three); elsewhere lane by lane. Integer arithmetic: the
// same bits either way.
inline void mulhilo(u8 a, uint32_t m, u8& hi, u8& lo) {
#if defined(__AVX2__)
  const __m256i av = (__m256i)a, mv = _mm256_set1_epi32((int)m);
  const __m256i even = _mm256_mul_epu32(av, mv), odd = _mm256_mul_epu32(_mm256_srli_epi64(av, 32), mv);
  hi = (u8)_mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
#else
  for (int l = 0; l < 8; ++l) hi[l] = (uint32_t)(((uint64_t)a[l] * m) >> 32);
#endif
  lo = a * m;
}

// Philox4x32-10 of the counters (c0 + lane, c1, c2, 0), 8 lanes.
inline void philox(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t k0, uint32_t k1, u8 w[4]) {
  u8 x0 = splat_u(c0) + u8{0, 1, 2, 3, 4, 5, 6, 7}, x1 = splat_u(c1), x2 = splat_u(c2), x3 = splat_u(0);
  for (int round = 0; round < 10; ++round) {
    u8 hi0, lo0, hi1, lo1;
    mulhilo(x0, 0xD2511F53u, hi0, lo0);
    mulhilo(x2, 0xCD9E8D57u, hi1, lo1);
    x0 = hi1 ^ x1 ^ k0;
    x1 = lo1;
    x2 = hi0 ^ x3 ^ k1;
    x3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  w[0] = x0; w[1] = x1; w[2] = x2; w[3] = x3;
}

inline f8 as_float(u8 v) { return __builtin_convertvector((i8)v, f8); }  // exact below 2^24

// Natural log of x in (0, 1] (Cephes logf).
inline f8 log01(f8 x) {
  const u8 bits = (u8)x;
  i8 e = (i8)(bits >> 23) - 126;  // x = m 2^e, m in [0.5, 1)
  f8 m = (f8)((bits & 0x007fffffu) | 0x3f000000u);
  const i8 small = m < splat(0.707106781186547524f);  // -1 where true
  e = e + small;
  m = small ? m + m : m;
  const f8 f = m - 1.0f, z = f * f, fe = __builtin_convertvector(e, f8);
  f8 y = splat(7.0376836292E-2f);
  y = y * f + -1.1514610310E-1f;
  y = y * f + 1.1676998740E-1f;
  y = y * f + -1.2420140846E-1f;
  y = y * f + 1.4249322787E-1f;
  y = y * f + -1.6668057665E-1f;
  y = y * f + 2.0000714765E-1f;
  y = y * f + -2.4999993993E-1f;
  y = y * f + 3.3333331174E-1f;
  y = y * f;
  y = y * z;
  y = y + fe * -2.12194440E-4f;
  y = y + z * -0.5f;
  return (f + y) + fe * 0.693359375f;
}

inline f8 sqrt8(f8 x) {
  f8 r;
  for (int l = 0; l < 8; ++l) r[l] = __builtin_sqrtf(x[l]);
  return r;
}

// Box-Muller: (r cos a, r sin a) with r = sqrt(-2 log u1), a = 2 pi u2, u1 in (0, 1], u2 in [0, 1).
inline void box_muller(u8 a, u8 b, f8& z0, f8& z1) {
  const f8 u1 = (as_float(a >> 8) + 1.0f) * 5.9604644775390625e-08f;  // 2^-24
  const f8 u2 = as_float(b >> 8) * 5.9604644775390625e-08f;
  const f8 r = sqrt8(log01(u1) * -2.0f);
  const f8 x = u2 * 4.0f;  // quarter turns
  const i8 quadrant = __builtin_convertvector(x, i8);  // floor: x >= 0
  const f8 t = ((x - __builtin_convertvector(quadrant, f8)) - 0.5f) * 1.57079632679489662f;
  const f8 t2 = t * t;
  f8 s = t2 * -1.9515295891E-4f;  // sin t, |t| <= pi / 4
  s = s + 8.3321608736E-3f;
  s = s * t2;
  s = s + -1.6666654611E-1f;
  s = s * t2;
  s = s * t;
  s = s + t;
  f8 c = t2 * 2.443315711809948E-5f;  // cos t
  c = c + -1.388731625493765E-3f;
  c = c * t2;
  c = c + 4.166664568298827E-2f;
  c = c * t2;
  c = c * t2;
  c = c - t2 * 0.5f;
  c = c + 1.0f;
  const f8 cos45 = (c - s) * 0.707106781186547524f, sin45 = (c + s) * 0.707106781186547524f;  // at t + pi / 4
  const i8 odd = (quadrant & 1) != 0;
  const f8 p = odd ? sin45 : cos45, q = odd ? cos45 : sin45;  // a quarter turn swaps them...
  const u8 qu = (u8)quadrant;
  const u8 flip_p = ((qu ^ (qu >> 1)) & 1u) << 31, flip_q = (qu >> 1) << 31;  // ...and flips signs
  z0 = r * (f8)((u8)p ^ flip_p);
  z1 = r * (f8)((u8)q ^ flip_q);
}

// The 32 entries of row `row`, columns 32 * block .. 32 * block + 31, into out[0..31].
inline void draw_block(uint32_t k0, uint32_t k1, uint64_t row, int64_t block, int dist, float* out) {
  u8 w[4];
  philox((uint32_t)(8 * block), (uint32_t)row, (uint32_t)(row >> 32), k0, k1, w);
  f8* o = (f8*)out;
  if (dist == kGaussian) {
    box_muller(w[0], w[1], o[0], o[1]);
    box_muller(w[2], w[3], o[2], o[3]);
  } else if (dist == kUniform) {
    for (int k = 0; k < 4; ++k) o[k] = (as_float(w[k] >> 9) * 2.0f + 1.0f) * 1.1920928955078125e-07f - 1.0f;
  } else {
    for (int k = 0; k < 4; ++k) o[k] = (f8)((u8)splat(1.0f) | (w[k] & 0x80000000u));
  }
}

// Row `row` of d entries (d rounded up to 32) into out.
inline void draw_row(uint32_t k0, uint32_t k1, uint64_t row, int64_t blocks, int dist, float* out) {
  for (int64_t b = 0; b < blocks; ++b) draw_block(k0, k1, row, b, dist, out + kBlock * b);
}

void check(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.is_contiguous() && t.scalar_type() == at::kFloat,
              name, " must be a contiguous float32 CPU tensor");
}

// The adjoints' per-block sums (blocks x size, float32) added in block order in float64, so the
// result does not depend on how the blocks were spread over threads.
std::vector<double> block_totals(const std::vector<float>& shares, int64_t blocks, int64_t size) {
  std::vector<double> total(size, 0.0);
  for (int64_t rb = 0; rb < blocks; ++rb) {
    const float* acc = shares.data() + rb * size;
    for (int64_t k = 0; k < size; ++k) total[k] += acc[k];
  }
  return total;
}

}  // namespace

// out (rows, d): rows row0 .. row0 + rows - 1 of the matrix.
void random_rows(int64_t k0, int64_t k1, int64_t row0, int64_t dist, const at::Tensor& out) {
  check(out, "out");
  const int64_t rows = out.size(0), d = out.size(1), blocks = (d + kBlock - 1) / kBlock;
  float* op = out.data_ptr<float>();
  at::parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
    std::vector<float> row(blocks * kBlock);
    for (int64_t r = begin; r < end; ++r) {
      draw_row((uint32_t)k0, (uint32_t)k1, (uint64_t)(row0 + r), blocks, (int)dist, row.data());
      std::memcpy(op + r * d, row.data(), d * sizeof(float));
    }
  });
}

// For g (m, D): out (m, d) = A^T g and squares (d, float64) = the squared column norms of A
// (D x d), with A's rows drawn on the fly. Rows are summed in blocks of 256 (float32, row order),
// the blocks' sums then in block order (float64), so any thread count gives the same bits.
// A non-empty `keep` (D, d rounded up to 32; float32) receives the drawn rows, for kept_product.
void random_adjoint(int64_t k0, int64_t k1, int64_t dist, const at::Tensor& g, const at::Tensor& out,
                    const at::Tensor& squares, const at::Tensor& keep) {
  check(g, "g");
  check(out, "out");
  TORCH_CHECK(squares.scalar_type() == at::kDouble && squares.is_contiguous(), "squares must be float64");
  const int64_t m = g.size(0), D = g.size(1), d = out.size(1), blocks = (d + kBlock - 1) / kBlock;
  const int64_t width = blocks * kBlock, row_blocks = (D + kRowBlock - 1) / kRowBlock;
  float* kp = nullptr;
  if (keep.numel() > 0) {
    check(keep, "keep");
    TORCH_CHECK(keep.dim() == 2 && keep.size(0) == D && keep.size(1) == width,
                "keep must be (D, d rounded up to 32)");
    kp = keep.data_ptr<float>();
  }
  // per row block: m sums of products, then the sums of squares, each `width` long
  std::vector<float> shares(row_blocks * (m + 1) * width);
  const float* gp = g.data_ptr<float>();
  at::parallel_for(0, row_blocks, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scratch(width);
    for (int64_t rb = begin; rb < end; ++rb) {
      float* acc = shares.data() + rb * (m + 1) * width;
      std::fill(acc, acc + (m + 1) * width, 0.0f);
      f8* sq = (f8*)(acc + m * width);
      for (int64_t i = rb * kRowBlock; i < std::min(D, (rb + 1) * kRowBlock); ++i) {
        float* row = kp ? kp + i * width : scratch.data();
        draw_row((uint32_t)k0, (uint32_t)k1, (uint64_t)i, blocks, (int)dist, row);
        const f8* e = (const f8*)row;
        for (int64_t v = 0; v < width / 8; ++v) sq[v] = sq[v] + e[v] * e[v];
        for (int64_t r = 0; r < m; ++r) {
          const f8 gi = splat(gp[r * D + i]);
          f8* a = (f8*)(acc + r * width);
          for (int64_t v = 0; v < width / 8; ++v) a[v] = a[v] + gi * e[v];
        }
      }
    }
  });
  const std::vector<double> total = block_totals(shares, row_blocks, (m + 1) * width);
  float* op = out.data_ptr<float>();
  for (int64_t r = 0; r < m; ++r)
    for (int64_t j = 0; j < d; ++j) op[r * d + j] = (float)total[r * width + j];
  double* sp = squares.data_ptr<double>();
  for (int64_t j = 0; j < d; ++j) sp[j] = total[m * width + j];
}

namespace {

// out (m, D) = A s for s (m, d), A's row i given by row(i, scratch): each output sums its row's
// products in 8 lanes (columns j = 8 q + lane), then the lanes pairwise.
template <typename Row>
void product(const at::Tensor& s, const at::Tensor& out, int64_t width, Row row) {
  check(s, "s");
  check(out, "out");
  const int64_t m = s.size(0), d = s.size(1), D = out.size(1);
  std::vector<float> padded(m * width, 0.0f);  // zero beyond d: those entries add nothing
  for (int64_t r = 0; r < m; ++r)
    std::memcpy(padded.data() + r * width, s.data_ptr<float>() + r * d, d * sizeof(float));
  float* op = out.data_ptr<float>();
  at::parallel_for(0, D, 64, [&](int64_t begin, int64_t end) {
    std::vector<float> scratch(width);
    for (int64_t i = begin; i < end; ++i) {
      const f8* e = (const f8*)row(i, scratch.data());
      for (int64_t r = 0; r < m; ++r) {
        const f8* sv = (const f8*)(padded.data() + r * width);
        f8 acc = splat(0.0f);
        for (int64_t v = 0; v < width / 8; ++v) acc = acc + e[v] * sv[v];
        op[r * D + i] = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
      }
    }
  });
}

}  // namespace

// out (m, D) = A s for s (m, d), with A's rows drawn on the fly.
void random_product(int64_t k0, int64_t k1, int64_t dist, const at::Tensor& s, const at::Tensor& out) {
  const int64_t blocks = (s.size(1) + kBlock - 1) / kBlock;
  product(s, out, blocks * kBlock, [&](int64_t i, float* scratch) {
    draw_row((uint32_t)k0, (uint32_t)k1, (uint64_t)i, blocks, (int)dist, scratch);
    return scratch;
  });
}

// out (m, D) = A s with A's rows as random_adjoint kept them (D, d rounded up to 32): the same
// sums, in the same order, as random_product of the same matrix.
void kept_product(const at::Tensor& rows, const at::Tensor& s, const at::Tensor& out) {
  check(rows, "rows");
  const int64_t width = rows.size(1);
  TORCH_CHECK(rows.dim() == 2 && rows.size(0) == out.size(1) &&
                  width == (s.size(1) + kBlock - 1) / kBlock * kBlock,
              "rows must be (D, d rounded up to 32)");
  const float* rp = rows.data_ptr<float>();
  product(s, out, width, [&](int64_t i, float*) { return rp + i * width; });
}

namespace {

// One Marsaglia-Tsang candidate (draw_chi in random_matrix.py, same float64 operations in the same
// order): x a standard normal, uf a uniform entry in (-1, 1). 1: accepted, gamma set; 0: rejected;
// -1: the log test fell so near its boundary that glibc's log and numpy's (which may differ in
// the last place) could decide it differently: the caller lets numpy decide.
inline int gamma_candidate(float xf, float uf, double c, double dd, double& gamma) {
  const double u = ((double)uf + 1.0) * 0.5;
  double x = xf;
  double v = x * c;
  v = v + 1.0;
  double w = v * v;
  v = v * w;  // (1 + c x)^3
  x = x * x;
  w = x * x;  // x^4
  w = w * -0.0331;
  w = w + 1.0;
  if (!(v > 0.0)) return 0;
  if (!(u < w)) {  // the squeeze failed: the log test
    const double log_u = std::log(u), log_v = std::log(v);
    const double rhs = 0.5 * x + dd * ((1.0 - v) + log_v);
    const double margin = 1e-12 * (std::fabs(log_u) + 0.5 * x + dd * (std::fabs(1.0 - v) + std::fabs(log_v)) + 1.0);
    if (std::fabs(log_u - rhs) <= margin) return -1;
    if (!(log_u < rhs)) return 0;
  }
  gamma = v * dd;
  return 1;
}

}  // namespace

// Attempt k of draw_chi's rejection at every entry of gamma (rows, n; float64) whose `ok` (bool)
// is false, the candidates from entry (i, j) of the Gaussian stream (nk0, nk1) and the uniform
// stream (uk0, uk1): an accepted entry gets its Gamma(a) value and ok. False if some log test was
// a close call (see gamma_candidate): then gamma and ok are incomplete and numpy must decide.
bool gamma_attempt(int64_t nk0, int64_t nk1, int64_t uk0, int64_t uk1, double c, double dd,
                   const at::Tensor& gamma, const at::Tensor& ok) {
  TORCH_CHECK(gamma.scalar_type() == at::kDouble && gamma.is_contiguous() && gamma.dim() == 2, "gamma must be (rows, n) float64");
  TORCH_CHECK(ok.scalar_type() == at::kBool && ok.is_contiguous() && ok.sizes() == gamma.sizes(), "ok must be bool like gamma");
  const int64_t rows = gamma.size(0), n = gamma.size(1), blocks = (n + kBlock - 1) / kBlock;
  double* gp = gamma.data_ptr<double>();
  bool* op = ok.data_ptr<bool>();
  std::atomic<bool> close(false);
  at::parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
    std::vector<float> x(blocks * kBlock), u(blocks * kBlock);
    alignas(32) float xb[kBlock], ub[kBlock];
    for (int64_t i = begin; i < end; ++i) {
      bool* okr = op + i * n;
      int64_t pending = 0;
      for (int64_t j = 0; j < n; ++j) pending += !okr[j];
      if (pending == 0) continue;
      const bool whole = pending * 4 > n;  // most of the row: draw it all, else block by block
      if (whole) {
        draw_row((uint32_t)nk0, (uint32_t)nk1, (uint64_t)i, blocks, kGaussian, x.data());
        draw_row((uint32_t)uk0, (uint32_t)uk1, (uint64_t)i, blocks, kUniform, u.data());
      }
      int64_t drawn = -1;  // the block held in xb, ub
      for (int64_t j = 0; j < n; ++j) {
        if (okr[j]) continue;
        float xf, uf;
        if (whole) {
          xf = x[j], uf = u[j];
        } else {
          if (j / kBlock != drawn) {
            drawn = j / kBlock;
            draw_block((uint32_t)nk0, (uint32_t)nk1, (uint64_t)i, drawn, kGaussian, xb);
            draw_block((uint32_t)uk0, (uint32_t)uk1, (uint64_t)i, drawn, kUniform, ub);
          }
          xf = xb[j % kBlock], uf = ub[j % kBlock];
        }
        const int verdict = gamma_candidate(xf, uf, c, dd, gp[i * n + j]);
        if (verdict < 0) close.store(true, std::memory_order_relaxed);
        okr[j] = verdict > 0;
      }
    }
  });
  return !close.load();
}

namespace {

constexpr int64_t kLanes = 8;

// The sum of a row's products with s, 4 accumulators of 8 lanes over columns j = 32 q + 8 a +
// lane, then the accumulators and lanes pairwise, then the tail (d not a multiple of 32) in order.
inline float row_dot(const float* e, const float* s, int64_t d) {
  f8 acc[4] = {splat(0.0f), splat(0.0f), splat(0.0f), splat(0.0f)};
  int64_t j = 0;
  for (; j + 4 * kLanes <= d; j += 4 * kLanes)
    for (int a = 0; a < 4; ++a)
      acc[a] = acc[a] + *(const f8*)(e + j + a * kLanes) * *(const f8*)(s + j + a * kLanes);
  const f8 sum = (acc[0] + acc[1]) + (acc[2] + acc[3]);
  float total = ((sum[0] + sum[4]) + (sum[2] + sum[6])) + ((sum[1] + sum[5]) + (sum[3] + sum[7]));
  for (; j < d; ++j) total += e[j] * s[j];
  return total;
}

}  // namespace

// out (m, D) = [base +] A s for a stored matrix A (D, d) and s (m, d): each output is its row's
// dot product (row_dot), so any thread count gives the same bits. base: (D) shared, or (m, D).
void matrix_product(const at::Tensor& matrix, const at::Tensor& s, const c10::optional<at::Tensor>& base,
                    const at::Tensor& out) {
  check(matrix, "matrix");
  check(s, "s");
  check(out, "out");
  const int64_t D = matrix.size(0), d = matrix.size(1), m = s.size(0);
  TORCH_CHECK(s.size(1) == d && out.size(0) == m && out.size(1) == D, "shapes do not match");
  const float* bp = nullptr;
  bool shared = true;
  if (base.has_value()) {
    check(*base, "base");
    shared = base->dim() == 1;
    bp = base->data_ptr<float>();
  }
  const float* ap = matrix.data_ptr<float>();
  const float* sp = s.data_ptr<float>();
  float* op = out.data_ptr<float>();
  at::parallel_for(0, D, 256, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      for (int64_t r = 0; r < m; ++r) {
        const float dot = row_dot(ap + i * d, sp + r * d, d);
        op[r * D + i] = bp ? bp[(shared ? 0 : r * D) + i] + dot : dot;
      }
  });
}

// out (m, d) = A^T g for a stored matrix A (D, d) and g (m, D): rows summed in blocks of 256
// (float32, row order), the blocks' sums then in block order (float64), as random_adjoint does.
void matrix_adjoint(const at::Tensor& matrix, const at::Tensor& g, const at::Tensor& out) {
  check(matrix, "matrix");
  check(g, "g");
  check(out, "out");
  const int64_t D = matrix.size(0), d = matrix.size(1), m = g.size(0);
  TORCH_CHECK(g.size(1) == D && out.size(0) == m && out.size(1) == d, "shapes do not match");
  const int64_t width = (d + kLanes - 1) / kLanes * kLanes, row_blocks = (D + kRowBlock - 1) / kRowBlock;
  std::vector<float> shares(row_blocks * m * width);
  const float* ap = matrix.data_ptr<float>();
  const float* gp = g.data_ptr<float>();
  at::parallel_for(0, row_blocks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t rb = begin; rb < end; ++rb) {
      float* acc = shares.data() + rb * m * width;
      std::fill(acc, acc + m * width, 0.0f);
      for (int64_t i = rb * kRowBlock; i < std::min(D, (rb + 1) * kRowBlock); ++i) {
        const float* e = ap + i * d;
        for (int64_t r = 0; r < m; ++r) {
          const float gi = gp[r * D + i];
          const f8 gv = splat(gi);
          float* a = acc + r * width;
          int64_t j = 0;
          for (; j + kLanes <= d; j += kLanes) *(f8*)(a + j) = *(f8*)(a + j) + gv * *(const f8*)(e + j);
          for (; j < d; ++j) a[j] += gi * e[j];
        }
      }
    }
  });
  const std::vector<double> total = block_totals(shares, row_blocks, m * width);
  float* op = out.data_ptr<float>();
  for (int64_t r = 0; r < m; ++r)
    for (int64_t j = 0; j < d; ++j) op[r * d + j] = (float)total[r * width + j];
}
