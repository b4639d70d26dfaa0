// In-place Walsh-Hadamard butterflies, the fused Fastfood products, a CSR scatter product and
// the row-wise argsort of uniform floats that draws Fastfood's permutations, for CPU tensors.
//
// Compiled on first use by idbench/kernels/__init__.py (torch's extension builder); the
// pure-torch twins (hadamard.butterfly and tree_sum, FastfoodProjection's _product_torch and
// _adjoint_parts_torch) do the same float operations in the same order, so both give
// bit-identical results. Every block of n = 2^k values is transformed in scratch memory that
// stays in L1, and the blocks are spread over torch's intra-op threads.
//
// Built with -ffp-contract=off: a multiply followed by an add must round twice, as in torch.

#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

namespace {

// Vectors of 32 bytes (GCC/Clang vector extensions: AVX registers where the build enables them,
// pairs of SSE registers otherwise); unaligned and may_alias, so they load from any row.
typedef float f8 __attribute__((vector_size(32), aligned(4), may_alias));
typedef double d4 __attribute__((vector_size(32), aligned(8), may_alias));
template <typename T> struct Lanes;
template <> struct Lanes<float> { using V = f8; static constexpr int64_t width = 8; };
template <> struct Lanes<double> { using V = d4; static constexpr int64_t width = 4; };

#if defined(__clang__)
#define SHUFFLE(v, ...) __builtin_shufflevector(v, v, __VA_ARGS__)
#else
#define SHUFFLE(v, ...) __builtin_shuffle(v, decltype(to_mask(v)){__VA_ARGS__})
inline auto to_mask(f8) -> int __attribute__((vector_size(32)));
inline auto to_mask(d4) -> long long __attribute__((vector_size(32)));
#endif

// Stages h = 1, 2, 4 (floats) or h = 1, 2 (doubles) inside one vector: lane i becomes
// a + b or a + (-b), which is a - b exactly (IEEE defines subtraction so).
inline f8 small_stages(f8 v) {
  v = SHUFFLE(v, 0, 0, 2, 2, 4, 4, 6, 6) + SHUFFLE(v, 1, 1, 3, 3, 5, 5, 7, 7) * f8{1, -1, 1, -1, 1, -1, 1, -1};
  v = SHUFFLE(v, 0, 1, 0, 1, 4, 5, 4, 5) + SHUFFLE(v, 2, 3, 2, 3, 6, 7, 6, 7) * f8{1, 1, -1, -1, 1, 1, -1, -1};
  return SHUFFLE(v, 0, 1, 2, 3, 0, 1, 2, 3) + SHUFFLE(v, 4, 5, 6, 7, 4, 5, 6, 7) * f8{1, 1, 1, 1, -1, -1, -1, -1};
}
inline d4 small_stages(d4 v) {
  v = SHUFFLE(v, 0, 0, 2, 2) + SHUFFLE(v, 1, 1, 3, 3) * d4{1, -1, 1, -1};
  return SHUFFLE(v, 0, 1, 0, 1) + SHUFFLE(v, 2, 3, 2, 3) * d4{1, 1, -1, -1};
}

// One radix-2 stage on scalars: x[j], x[j + h] <- x[j] + x[j + h], x[j] - x[j + h].
template <typename T>
void scalar_stage(T* x, int64_t n, int64_t h) {
  for (int64_t i = 0; i < n; i += 2 * h)
    for (int64_t j = i; j < i + h; ++j) {
      const T a = x[j], b = x[j + h];
      x[j] = a + b;
      x[j + h] = a - b;
    }
}

// Stages h and 2 h together (h a multiple of the vector width): every value goes through the
// same two additions as in two separate stages, with half the loads and stores.
template <typename T>
void vector_stages(T* x, int64_t n, int64_t h, bool pair) {
  using V = typename Lanes<T>::V;
  const int64_t w = Lanes<T>::width;
  if (!pair) {
    for (int64_t i = 0; i < n; i += 2 * h)
      for (int64_t j = i; j < i + h; j += w) {
        const V a = *(V*)(x + j), b = *(V*)(x + j + h);
        *(V*)(x + j) = a + b;
        *(V*)(x + j + h) = a - b;
      }
    return;
  }
  for (int64_t i = 0; i < n; i += 4 * h)
    for (int64_t j = i; j < i + h; j += w) {
      const V a = *(V*)(x + j), b = *(V*)(x + j + h);
      const V c = *(V*)(x + j + 2 * h), d = *(V*)(x + j + 3 * h);
      const V s0 = a + b, s1 = a - b, s2 = c + d, s3 = c - d;
      *(V*)(x + j) = s0 + s2;
      *(V*)(x + j + h) = s1 + s3;
      *(V*)(x + j + 2 * h) = s0 - s2;
      *(V*)(x + j + 3 * h) = s1 - s3;
    }
}

// The unnormalised transform of one block: stages h = 1, 2, 4, ..., n / 2, in that order.
template <typename T>
void butterfly(T* x, int64_t n) {
  using V = typename Lanes<T>::V;
  const int64_t w = Lanes<T>::width;
  if (n < w) {
    for (int64_t h = 1; h < n; h <<= 1) scalar_stage(x, n, h);
    return;
  }
  for (int64_t j = 0; j < n; j += w) *(V*)(x + j) = small_stages(*(V*)(x + j));
  for (int64_t h = w; h < n; h <<= 2) vector_stages(x, n, h, 2 * h < n);
}

void check_cpu_contiguous(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu(), name, " must be a CPU tensor");
  TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
}

// f(pointer to the indices): int16 or int32, the smallest type that holds the block length.
template <typename F>
void with_indices(const at::Tensor& indices, F&& f) {
  if (indices.scalar_type() == at::kShort) return f(indices.data_ptr<int16_t>());
  TORCH_CHECK(indices.scalar_type() == at::kInt, "permutations must be int16 or int32");
  f(indices.data_ptr<int32_t>());
}

}  // namespace

// x (m, n), contiguous, transformed in place.
void fwht_(const at::Tensor& x) {
  check_cpu_contiguous(x, "x");
  const int64_t n = x.size(-1), m = x.numel() / std::max<int64_t>(n, 1);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fwht_", [&] {
    scalar_t* data = x.data_ptr<scalar_t>();
    at::parallel_for(0, m, 1, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) butterfly(data + r * n, n);
    });
  });
}

// out (m, D) = [base +] S H G Pi H B z_pad for z (m, d), over all blocks (B, n).
void fastfood_forward(const at::Tensor& z, const at::Tensor& signs, const at::Tensor& perm,
                      const at::Tensor& gauss, const at::Tensor& scale,
                      const c10::optional<at::Tensor>& base, const at::Tensor& out) {
  for (const auto* t : {&z, &signs, &perm, &gauss, &scale, &out}) check_cpu_contiguous(*t, "input");
  const int64_t blocks = signs.size(0), n = signs.size(1), d = z.size(-1), D = scale.size(0);
  const int64_t m = z.numel() / d;
  const bool shared_base = base.has_value() && base->dim() == 1;
  if (base.has_value()) check_cpu_contiguous(*base, "base");
  AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "fastfood_forward", [&] {
    const scalar_t* zp = z.data_ptr<scalar_t>();
    const int8_t* sp = signs.data_ptr<int8_t>();
    const scalar_t* gp = gauss.data_ptr<scalar_t>();
    const scalar_t* cp = scale.data_ptr<scalar_t>();
    const scalar_t* bp = base.has_value() ? base->data_ptr<scalar_t>() : nullptr;
    scalar_t* op = out.data_ptr<scalar_t>();
    with_indices(perm, [&](const auto* pp) {
    at::parallel_for(0, m * blocks, 1, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> a(n), b(n);
      for (int64_t task = begin; task < end; ++task) {
        const int64_t r = task / blocks, k = task % blocks;
        const scalar_t* zr = zp + r * d;
        const int8_t* s = sp + k * n;
        for (int64_t j = 0; j < d; ++j) a[j] = zr[j] * static_cast<scalar_t>(s[j]);
        std::fill(a.begin() + d, a.end(), scalar_t(0));
        butterfly(a.data(), n);
        const auto* p = pp + k * n;
        const scalar_t* g = gp + k * n;
        for (int64_t i = 0; i < n; ++i) b[i] = a[p[i]] * g[i];
        butterfly(b.data(), n);
        const int64_t row0 = k * n, rows = std::min(n, D - row0);
        scalar_t* o = op + r * D + row0;
        const scalar_t* c = cp + row0;
        if (bp == nullptr) {
          for (int64_t i = 0; i < rows; ++i) o[i] = b[i] * c[i];
        } else {
          const scalar_t* bb = bp + (shared_base ? 0 : r * D) + row0;
          for (int64_t i = 0; i < rows; ++i) {
            const scalar_t t = b[i] * c[i];
            o[i] = bb[i] + t;
          }
        }
      }
    });
    });
  });
}

// Block k's share of P^T g (B H Pi^T G H S g_pad, cut to d) into o.
template <typename T, typename I>
void adjoint_block(const T* g, const int8_t* signs, const I* inv_perm, const T* gauss,
                   const T* scale, int64_t rows, int64_t n, int64_t d, T* a, T* b, T* o) {
  for (int64_t i = 0; i < rows; ++i) a[i] = g[i] * scale[i];
  std::fill(a + rows, a + n, T(0));
  butterfly(a, n);
  for (int64_t i = 0; i < n; ++i) a[i] = a[i] * gauss[i];
  for (int64_t i = 0; i < n; ++i) b[i] = a[inv_perm[i]];
  butterfly(b, n);
  for (int64_t j = 0; j < d; ++j) o[j] = b[j] * static_cast<T>(signs[j]);
}

template <typename T>
void add_into(const T* left, T* right, int64_t d) {  // right <- left + right
  for (int64_t j = 0; j < d; ++j) right[j] = left[j] + right[j];
}

// Blocks are summed as a pairwise tree, level by level, the last node of an odd level carried up
// unchanged (hadamard.tree_sum). A group of kGroup blocks (a power of two) is a subtree of it:
// each task sums one group with a binary-counter stack, which forms the same nodes, and the
// group sums are then summed level by level, so the result does not depend on the threads.
constexpr int64_t kGroupLog2 = 4, kGroup = int64_t(1) << kGroupLog2;

// rows (count, d) <- their level-by-level pairwise sum, in rows[0] (tree_sum's order).
template <typename T>
void tree_sum_rows(T* rows, int64_t count, int64_t d) {
  for (; count > 1; count = count / 2 + count % 2) {
    for (int64_t i = 0; i < count / 2; ++i)
      for (int64_t j = 0; j < d; ++j) rows[i * d + j] = rows[2 * i * d + j] + rows[(2 * i + 1) * d + j];
    if (count % 2) std::copy(rows + (count - 1) * d, rows + count * d, rows + count / 2 * d);
  }
}

// out (m, d) = P^T g for g (m, D).
void fastfood_adjoint(const at::Tensor& g, const at::Tensor& signs, const at::Tensor& inv_perm,
                      const at::Tensor& gauss, const at::Tensor& scale, const at::Tensor& out) {
  for (const auto* t : {&g, &signs, &inv_perm, &gauss, &scale, &out})
    check_cpu_contiguous(*t, "input");
  const int64_t blocks = signs.size(0), n = signs.size(1), d = out.size(-1), D = scale.size(0);
  const int64_t m = g.numel() / D, groups = (blocks + kGroup - 1) / kGroup;
  std::vector<char> scratch(m * groups * d * g.element_size());
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "fastfood_adjoint", [&] {
    using T = scalar_t;
    const T* gp = g.data_ptr<T>();
    const int8_t* sp = signs.data_ptr<int8_t>();
    const T* np = gauss.data_ptr<T>();
    const T* cp = scale.data_ptr<T>();
    T* op = reinterpret_cast<T*>(scratch.data());  // every group's sum: (m, groups, d)
    with_indices(inv_perm, [&](const auto* pp) {
    at::parallel_for(0, m * groups, 1, [&](int64_t begin, int64_t end) {
      std::vector<T> a(n), b(n), stack((kGroupLog2 + 1) * d), cur(d);
      for (int64_t task = begin; task < end; ++task) {
        const int64_t r = task / groups, first = (task % groups) * kGroup;
        const int64_t count = std::min(kGroup, blocks - first);
        for (int64_t j = 0; j < count; ++j) {
          const int64_t k = first + j, row0 = k * n;
          adjoint_block(gp + r * D + row0, sp + k * n, pp + k * n, np + k * n, cp + row0,
                        std::min(n, D - row0), n, d, a.data(), b.data(), cur.data());
          int64_t level = 0;
          for (int64_t idx = j; idx & 1; idx >>= 1, ++level)
            add_into(stack.data() + level * d, cur.data(), d);  // left sibling + this node
          std::copy(cur.begin(), cur.end(), stack.begin() + level * d);
        }
        // the incomplete top: pending nodes (the set bits of count), each the left sibling of
        // what is carried up from the levels below it
        T* sum = op + task * d;
        bool carried = false;
        for (int64_t level = 0; level <= kGroupLog2; ++level) {
          if (!((count >> level) & 1)) continue;
          const T* node = stack.data() + level * d;
          if (carried) add_into(node, sum, d);
          else std::copy(node, node + d, sum);
          carried = true;
        }
      }
    });
    });
    T* result = out.data_ptr<T>();
    for (int64_t r = 0; r < m; ++r) {
      tree_sum_rows(op + r * groups * d, groups, d);
      std::copy(op + r * groups * d, op + r * groups * d + d, result + r * d);
    }
  });
}

// out (m, b) = [base +] A^T x for A (a x b) in CSR form (crow, col, values) and x (m, a): every
// stored entry is scattered in storage order, so each output adds its terms in A's row order, one
// rounding per term, as index_add_ does on the CPU. Parallel over the m rows of x only.
void csr_transposed_matvec(const at::Tensor& crow, const at::Tensor& col, const at::Tensor& values,
                           const at::Tensor& x, const c10::optional<at::Tensor>& base,
                           const at::Tensor& out) {
  for (const auto* t : {&crow, &col, &values, &x, &out}) check_cpu_contiguous(*t, "input");
  if (base.has_value()) check_cpu_contiguous(*base, "base");
  TORCH_CHECK(crow.scalar_type() == col.scalar_type(), "CSR index types differ");
  const int64_t a = crow.numel() - 1, b = out.size(-1), m = x.numel() / std::max<int64_t>(a, 1);
  const bool shared_base = base.has_value() && base->dim() == 1;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "csr_transposed_matvec", [&] {
    using T = scalar_t;
    const T* v = values.data_ptr<T>();
    const T* xp = x.data_ptr<T>();
    const T* bp = base.has_value() ? base->data_ptr<T>() : nullptr;
    T* op = out.data_ptr<T>();
    auto run = [&](const auto* cr, const auto* cols) {
      at::parallel_for(0, m, 1, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          T* o = op + r * b;
          if (bp == nullptr) std::fill(o, o + b, T(0));
          else std::copy(bp + (shared_base ? 0 : r * b), bp + (shared_base ? 0 : r * b) + b, o);
          const T* xr = xp + r * a;
          for (int64_t j = 0; j < a; ++j) {
            const T xj = xr[j];
            for (int64_t k = cr[j]; k < cr[j + 1]; ++k) {
              const T term = xj * v[k];
              o[cols[k]] += term;
            }
          }
        }
      });
    };
    if (crow.scalar_type() == at::kInt) run(crow.data_ptr<int32_t>(), col.data_ptr<int32_t>());
    else run(crow.data_ptr<int64_t>(), col.data_ptr<int64_t>());
  });
}

// The stable argsort of every row of x (rows x n, float32 in [0, 1) on the 2^-24 grid, as
// torch.rand draws them) by a radix sort of the 24-bit integers x * 2^24: three stable counting
// passes of 8 bits, O(n) per row; equal keys keep their order, as in torch.argsort(stable=True).
// Each element is its key and index packed in one 64-bit word, so a pass moves one word, and the
// three passes' counts are taken in one read. A row with a value off the grid is flagged in
// ``off_grid`` instead, for the caller to sort with torch. Returns (perm int64, off_grid).
std::vector<at::Tensor> argsort_uniform_rows(const at::Tensor& x) {
  check_cpu_contiguous(x, "x");
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kFloat, "x must be a 2-d float32 tensor");
  const int64_t rows = x.size(0), n = x.size(1);
  TORCH_CHECK(n < (int64_t(1) << 32), "rows longer than 2^32 are not supported");
  at::Tensor perm = at::empty({rows, n}, x.options().dtype(at::kLong));
  at::Tensor off_grid = at::zeros({rows}, x.options().dtype(at::kBool));
  const float* xp = x.data_ptr<float>();
  int64_t* pp = perm.data_ptr<int64_t>();
  bool* tp = off_grid.data_ptr<bool>();
  at::parallel_for(0, rows, 1, [&](int64_t begin, int64_t end) {
    std::vector<uint64_t> a(n), b(n);  // (key << 32) | index
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = xp + r * n;
      bool on_grid = true;
      uint32_t count[3][256] = {};
      for (int64_t i = 0; i < n; ++i) {
        const float scaled = xr[i] * 16777216.0f;  // exact: a power of two
        on_grid = on_grid && scaled >= 0.0f && scaled < 16777216.0f &&
                  static_cast<float>(static_cast<uint32_t>(scaled)) == scaled;
        const uint32_t key = on_grid ? static_cast<uint32_t>(scaled) : 0;
        a[i] = (static_cast<uint64_t>(key) << 32) | static_cast<uint64_t>(i);
        ++count[0][key & 255];
        ++count[1][(key >> 8) & 255];
        ++count[2][key >> 16];
      }
      if (!on_grid) { tp[r] = true; continue; }
      for (int pass = 0; pass < 3; ++pass) {
        uint32_t start[256];
        uint32_t total = 0;
        for (int d = 0; d < 256; ++d) {
          start[d] = total;
          total += count[pass][d];
        }
        const int shift = 32 + 8 * pass;
        for (int64_t i = 0; i < n; ++i) {
          const uint64_t v = a[i];
          b[start[(v >> shift) & 255]++] = v;
        }
        a.swap(b);
      }
      int64_t* out = pp + r * n;
      for (int64_t i = 0; i < n; ++i) out[i] = static_cast<int64_t>(a[i] & 0xffffffffu);
    }
  });
  return {perm, off_grid};
}
