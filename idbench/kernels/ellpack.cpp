// Products with a sparse matrix whose every row holds the same number k of entries (ELLPACK
// layout), for CPU tensors: FastJL's Q (D x n, k entries per row). The matrix is stored as two
// (k, D) arrays, the column of entry s of row i at cols[s, i] and its value at values[s, i], so
// both products stream them in order and no transposed copy is kept.
//
//   ell_matvec:            out[r, i] = [base[i] +] sum over s of values[s, i] x[r, cols[s, i]]
//                          (the terms added s = 0, 1, ...; then base + that sum)
//   ell_transposed_matvec: out[r, j] = sum over the entries in column j of values[s, i] g[r, i]
//                          (rows in chunks of kChunk, each chunk's terms scattered in the order
//                          s, then i, into its own partial sum; the chunks' partial sums added as
//                          tree_sum_rows' pairwise tree (butterfly.cpp), so any thread count
//                          gives the same bits)
//
// The pure-torch twins in fastjl.py add in the same order. Built with -ffp-contract=off, as
// butterfly.cpp, which this file follows in the one translation unit (bindings.cpp).

namespace {

constexpr int64_t kChunk = 8192;     // rows per partial sum of the transposed product
constexpr int64_t kProductRows = 1024;  // rows per task of the product
constexpr int64_t kScatterRows = 256;   // terms computed together before they are scattered

template <typename T, typename I>
void ell_matvec_rows(const I* cols, const T* values, int64_t k, int64_t D, const T* x, const T* base,
                     T* out, int64_t begin, int64_t end) {
  T acc[kProductRows];
  for (int64_t i0 = begin; i0 < end; i0 += kProductRows) {
    const int64_t rows = std::min(kProductRows, end - i0);
    const I* c = cols + i0;
    const T* v = values + i0;
    for (int64_t i = 0; i < rows; ++i) acc[i] = v[i] * x[c[i]];
    for (int64_t s = 1; s < k; ++s) {
      c = cols + s * D + i0;
      v = values + s * D + i0;
      for (int64_t i = 0; i < rows; ++i) acc[i] = acc[i] + v[i] * x[c[i]];
    }
    if (base == nullptr) std::copy(acc, acc + rows, out + i0);
    else
      for (int64_t i = 0; i < rows; ++i) out[i0 + i] = base[i0 + i] + acc[i];
  }
}

void check_ell(const at::Tensor& cols, const at::Tensor& values) {
  check_cpu_contiguous(cols, "cols");
  check_cpu_contiguous(values, "values");
  TORCH_CHECK(cols.dim() == 2 && cols.sizes() == values.sizes(), "cols and values must be (k, D)");
  TORCH_CHECK(cols.scalar_type() == at::kShort || cols.scalar_type() == at::kInt,
              "cols must be int16 or int32");
}

}  // namespace

// out (m, D) = [base +] A x for x (m, n), A the ELLPACK matrix (cols, values), base (D) or (m, D).
void ell_matvec(const at::Tensor& cols, const at::Tensor& values, const at::Tensor& x,
                const c10::optional<at::Tensor>& base, const at::Tensor& out) {
  check_ell(cols, values);
  check_cpu_contiguous(x, "x");
  check_cpu_contiguous(out, "out");
  if (base.has_value()) check_cpu_contiguous(*base, "base");
  const int64_t k = cols.size(0), D = cols.size(1), n = x.size(-1), m = x.numel() / n;
  const bool shared_base = base.has_value() && base->dim() == 1;
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "ell_matvec", [&] {
    using T = scalar_t;
    const T* v = values.data_ptr<T>();
    auto run = [&](const auto* c) {
      at::parallel_for(0, m * ((D + kProductRows - 1) / kProductRows), 1, [&](int64_t first, int64_t last) {
        const int64_t blocks = (D + kProductRows - 1) / kProductRows;
        for (int64_t task = first; task < last; ++task) {
          const int64_t r = task / blocks, begin = (task % blocks) * kProductRows;
          const T* bp = !base.has_value() ? nullptr
                        : base->data_ptr<T>() + (shared_base ? 0 : r * D);
          ell_matvec_rows(c, v, k, D, x.data_ptr<T>() + r * n, bp, out.data_ptr<T>() + r * D,
                          begin, std::min(D, begin + kProductRows));
        }
      });
    };
    if (cols.scalar_type() == at::kShort) run(cols.data_ptr<int16_t>());
    else run(cols.data_ptr<int32_t>());
  });
}

// out (m, n) = A^T g for g (m, D), A the ELLPACK matrix (cols, values) of n columns.
void ell_transposed_matvec(const at::Tensor& cols, const at::Tensor& values, const at::Tensor& g,
                           const at::Tensor& out) {
  check_ell(cols, values);
  check_cpu_contiguous(g, "g");
  check_cpu_contiguous(out, "out");
  const int64_t k = cols.size(0), D = cols.size(1), n = out.size(-1), m = g.numel() / D;
  const int64_t chunks = (D + kChunk - 1) / kChunk;
  AT_DISPATCH_FLOATING_TYPES(g.scalar_type(), "ell_transposed_matvec", [&] {
    using T = scalar_t;
    std::vector<T> partial(m * chunks * n, T(0));  // (m, chunks, n)
    const T* v = values.data_ptr<T>();
    const T* gp = g.data_ptr<T>();
    auto run = [&](const auto* c) {
      at::parallel_for(0, m * chunks, 1, [&](int64_t first, int64_t last) {
        for (int64_t task = first; task < last; ++task) {
          const int64_t r = task / chunks, begin = (task % chunks) * kChunk;
          const int64_t end = std::min(D, begin + kChunk);
          T* acc = partial.data() + task * n;
          const T* gr = gp + r * D;
          T terms[kScatterRows];
          for (int64_t s = 0; s < k; ++s)
            for (int64_t i0 = begin; i0 < end; i0 += kScatterRows) {
              const int64_t rows = std::min(kScatterRows, end - i0);
              const T* vs = v + s * D + i0;
              const auto* cs = c + s * D + i0;
              for (int64_t i = 0; i < rows; ++i) terms[i] = vs[i] * gr[i0 + i];  // vectorises
              for (int64_t i = 0; i < rows; ++i) acc[cs[i]] += terms[i];
            }
        }
      });
    };
    if (cols.scalar_type() == at::kShort) run(cols.data_ptr<int16_t>());
    else run(cols.data_ptr<int32_t>());
    T* op = out.data_ptr<T>();
    for (int64_t r = 0; r < m; ++r) {
      tree_sum_rows(partial.data() + r * chunks * n, chunks, n);
      std::copy(partial.data() + r * chunks * n, partial.data() + r * chunks * n + n, op + r * n);
    }
  });
}
