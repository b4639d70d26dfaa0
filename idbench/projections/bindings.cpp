// The Python module of the compiled CPU kernels: butterfly.cpp (Walsh-Hadamard, Fastfood, CSR,
// permutations) and random_matrix.cpp (the dense projection's entries and products). Built on
// first use by idbench/projections/kernels.py.

#include <torch/extension.h>

#include <vector>

void fwht_(const at::Tensor& x);
void fastfood_forward(const at::Tensor& z, const at::Tensor& signs, const at::Tensor& perm,
                      const at::Tensor& gauss, const at::Tensor& scale,
                      const c10::optional<at::Tensor>& base, const at::Tensor& out);
void fastfood_adjoint(const at::Tensor& g, const at::Tensor& signs, const at::Tensor& inv_perm,
                      const at::Tensor& gauss, const at::Tensor& scale, const at::Tensor& out);
void csr_transposed_matvec(const at::Tensor& crow, const at::Tensor& col, const at::Tensor& values,
                           const at::Tensor& x, const c10::optional<at::Tensor>& base,
                           const at::Tensor& out);
std::vector<at::Tensor> argsort_uniform_rows(const at::Tensor& x);
void random_rows(int64_t k0, int64_t k1, int64_t row0, int64_t dist, const at::Tensor& out);
void random_adjoint(int64_t k0, int64_t k1, int64_t dist, const at::Tensor& g, const at::Tensor& out,
                    const at::Tensor& squares);
void random_product(int64_t k0, int64_t k1, int64_t dist, const at::Tensor& s, const at::Tensor& out);

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("fwht_", &fwht_, "in-place Walsh-Hadamard transform of every row");
  m.def("fastfood_forward", &fastfood_forward, "fused Fastfood product P z [+ base]");
  m.def("csr_transposed_matvec", &csr_transposed_matvec, "[base +] A^T x for a CSR matrix A");
  m.def("fastfood_adjoint", &fastfood_adjoint, "fused Fastfood adjoint P^T g");
  m.def("argsort_uniform_rows", &argsort_uniform_rows, "row argsort of torch.rand floats");
  m.def("random_rows", &random_rows, "rows of a counter-based random matrix");
  m.def("random_adjoint", &random_adjoint, "A^T g and A's squared column norms, A drawn on the fly");
  m.def("random_product", &random_product, "A s, A drawn on the fly");
}
