// What every Python boundary file (module.cpp, bindings_*.cpp) shares:
// the dtype test and running the core with the GIL released. Python-aware, so outside
// include/fastkkt (the core knows nothing about Python).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <chrono>
#include <thread>

namespace fastkkt_boundary {

namespace py = pybind11;

// Whether `d` is T in native byte order. Compared by kind, size and byte order, not by
// identity: arrays that went through pickle, ctypes or a dtype with metadata hold an equivalent
// dtype that is another object.
template <class T>
bool holds(const py::dtype& d) {
  const py::dtype want = py::dtype::of<T>();
  const char bo = d.byteorder();
  return d.kind() == want.kind() && d.itemsize() == want.itemsize() &&
         (bo == '=' || bo == '|' || bo == (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ ? '<' : '>'));
}

inline bool interpreter_finalizing() {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing() != 0;
#else
  return _Py_IsFinalizing() != 0;
#endif
}

// Takes the GIL back after a chunk. Not from a destructor (as gil_scoped_release would): when
// the interpreter is finalizing, a daemon thread that asks for the GIL is ended by
// pthread_exit (Python ≤ 3.13), and the forced unwinding through a noexcept destructor calls
// std::terminate (SIGABRT at exit). Such a thread is parked instead, as Python 3.14 does with
// its own threads; the process is exiting. In the remaining window (finalization starting
// between the check and the call) the unwinding runs through ordinary frames only.
inline void reacquire_gil(PyThreadState* state) {
  if (interpreter_finalizing())
    for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
  PyEval_RestoreThread(state);
}

// f() with the GIL released, then KeyboardInterrupt (or any pending signal's exception).
// Call the core this way, never under py::gil_scoped_release (see reacquire_gil); pass it
// fastkkt::usable_threads(requested) threads (fastkkt/threads.hpp: one in a forked child).
template <class F>
void run_released(const F& f) {
  PyThreadState* state = PyEval_SaveThread();
  try {
    f();
  } catch (...) {
    reacquire_gil(state);
    throw;
  }
  reacquire_gil(state);
  if (PyErr_CheckSignals() != 0) throw py::error_already_set();
}

}  // namespace fastkkt_boundary
