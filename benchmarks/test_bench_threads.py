"""Concurrency from Python: one solve on one thread against two solves at once from two Python
threads (each on one thread). With the GIL released the pair takes about as long as one solve
on a machine with two free cores; the ratio of the two groups' times shows it. (Moved here from
the tests: it is a speed measurement.)"""

import threading

import pytest

import fastkkt
from fastkkt import reference
from fastkkt.testing import assert_allclose_normwise, random_qp

PROBLEM = random_qp(20_000, 24, 6, seed=3)


@pytest.fixture
def one_thread():
    before = fastkkt.get_num_threads()
    fastkkt.set_num_threads(1)
    yield
    fastkkt.set_num_threads(before)


def _check(z):
    head = tuple(x[:64] for x in PROBLEM)
    assert_allclose_normwise(z[:64], reference.solve(*head), 1e-10)


def test_one_solve(benchmark, one_thread):
    benchmark.group = "gil: 20000x24x6, one thread per solve"
    _check(benchmark(fastkkt.solve, *PROBLEM))


def test_two_solves_from_two_python_threads(benchmark, one_thread):
    benchmark.group = "gil: 20000x24x6, one thread per solve"

    def pair():
        out = [None, None]

        def work(i):
            out[i] = fastkkt.solve(*PROBLEM)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return out

    for z in benchmark(pair):
        _check(z)
