// Explicit instantiation of the QP solver and its adjoint in double (instances.hpp says why).
#include "instances.hpp"

namespace fastkkt {
FASTKKT_INSTANCES_QP(, double)
}  // namespace fastkkt
