// The areas of the compiled module, each registered by its own file (module.cpp calls them):
// the KKT engine's solve, factorize and solve-with-records (bindings_kkt.cpp), its backward pass
// (bindings_adjoint.cpp); the inequality QP solver's is in bindings_qp.hpp.
#pragma once

#include <pybind11/pybind11.h>

void register_kkt(pybind11::module_& mod);
void register_adjoint(pybind11::module_& mod);
