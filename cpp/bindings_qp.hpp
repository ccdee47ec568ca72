// Registration of the inequality-constrained QP functions (bindings_qp.cpp) in the core module.
#pragma once

#include <pybind11/pybind11.h>

void register_qp(pybind11::module_& mod);
