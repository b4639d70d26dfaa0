// The Python module of the compiled CPU kernels, built on first use by
// idbench/kernels/__init__.py. It is the one translation unit of the build: it includes the
// kernels' sources, butterfly.cpp (Walsh-Hadamard, Fastfood, CSR, permutations), ellpack.cpp
// (FastJL's sparse rows of equal length), random_matrix.cpp (the dense projection's entries and
// products, Fastfood's chi entries) and pooling.cpp (the models' 2 x 2 max-pooling), so that
// torch's large headers are compiled once.

#include "butterfly.cpp"
#include "ellpack.cpp"
#include "random_matrix.cpp"
#include "pooling.cpp"

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("fwht_", &fwht_, "in-place Walsh-Hadamard transform of every row");
  m.def("fastfood_forward", &fastfood_forward, "fused Fastfood product P z [+ base]");
  m.def("csr_transposed_matvec", &csr_transposed_matvec, "[base +] A^T x for a CSR matrix A");
  m.def("fastfood_adjoint", &fastfood_adjoint, "fused Fastfood adjoint P^T g");
  m.def("ell_matvec", &ell_matvec, "[base +] A x for an ELLPACK matrix A");
  m.def("ell_transposed_matvec", &ell_transposed_matvec, "A^T g for an ELLPACK matrix A");
  m.def("argsort_uniform_rows", &argsort_uniform_rows, "row argsort of torch.rand floats");
  m.def("max_pool2x2", &max_pool2x2, "2 x 2 max-pooling, stride 2, with torch's indices");
  m.def("random_rows", &random_rows, "rows of a counter-based random matrix");
  m.def("random_adjoint", &random_adjoint, "A^T g and A's squared column norms, A drawn on the fly");
  m.def("random_product", &random_product, "A s, A drawn on the fly");
  m.def("kept_product", &kept_product, "A s, A's rows as random_adjoint kept them");
  m.def("gamma_attempt", &gamma_attempt, "one attempt of draw_chi's Gamma rejection");
  m.def("matrix_product", &matrix_product, "[base +] A s for a stored matrix A");
  m.def("matrix_adjoint", &matrix_adjoint, "A^T g for a stored matrix A");
}
