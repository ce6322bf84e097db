"""@iris.offload over iris-jit: compiled results equal CPython's, everything else falls back."""

from __future__ import annotations

import array
import math
import random
import threading

import pytest

import iris
from iris import jit


@iris.offload(strategy="jit", return_type="float")
def vector_magnitude(x: float, y: float, z: float) -> float:
    # simple expression gets compiled or dispatched via actor pool
    return (x * x + y * y + z * z) ** 0.5


@iris.offload(return_type="int")
def odd_squares(n):
    return sum(i * i for i in range(1, n) if i % 2)


@iris.offload()
def total(x):
    return sum(v for v in x)


@iris.offload()
def affine(x, k):
    return x * k + 1


@iris.offload()
def divide(a, b):
    return a / b


@iris.offload()
def python_semantics(a, b):
    q = a // b
    r = a % b
    return -q ** 2 + r if a < b < 100 else round(a / b) + q


GLOBAL = 3


@iris.offload()
def uses_a_global(x):
    return x * GLOBAL


@iris.offload(strategy="actor")
def heavy(n):
    return sum(math.sin(i) for i in range(n))


def test_seed_example_is_compiled_and_exact():
    assert jit.compiled(vector_magnitude) is not None
    assert vector_magnitude(1.0, 2.0, 3.0) == (1.0 + 4.0 + 9.0) ** 0.5


def test_generators_over_range_and_buffers():
    assert jit.compiled(odd_squares) is not None
    assert odd_squares(6) == 1 + 9 + 25
    assert odd_squares(1000) == sum(i * i for i in range(1, 1000) if i % 2)
    assert total(array.array("d", [1.0, 2.5, 4.0])) == 7.5
    assert total(array.array("i", [1, 2, 3])) == 6


def test_element_wise_over_buffers_with_scalar_broadcast():
    out = affine(array.array("d", [1.0, 2.5]), 2.0)
    assert list(out) == [3.0, 6.0]


def test_errors_python_raises_fall_back_and_raise_the_same():
    with pytest.raises(ZeroDivisionError):
        divide(1, 0)
    assert divide(1, 4) == 0.25


def test_big_ints_fall_back_to_python():
    assert odd_squares(10**20 // 10**19) == odd_squares.__wrapped__(10)
    big = 2**70
    assert affine(big, 3) == big * 3 + 1


def test_differential_against_cpython():
    rng = random.Random(7)
    for _ in range(500):
        a = rng.randint(-50, 150)
        b = rng.choice([i for i in range(-9, 120) if i != 0])
        assert python_semantics(a, b) == python_semantics.__wrapped__(a, b), (a, b)
        x, y, z = (rng.uniform(-1e3, 1e3) for _ in range(3))
        assert vector_magnitude(x, y, z) == vector_magnitude.__wrapped__(x, y, z)


def test_unknown_names_are_rejected_and_run_in_python():
    assert jit.compiled(uses_a_global) is None
    assert uses_a_global(2) == 6


def test_actor_strategy_runs_in_parallel_threads():
    assert jit.compiled(heavy) is not None
    results = []
    threads = [threading.Thread(target=lambda: results.append(heavy(20000))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expected = sum(math.sin(i) for i in range(20000))
    assert len(results) == 4
    assert all(r == pytest.approx(expected, rel=1e-12) for r in results)


def test_sum_while_cap_raises_jit_limit_error():
    f = jit.jit_compile("sum_while(i, 0, i >= 0, i + 1, i)", [], None, False, None)
    with pytest.raises(iris.JitLimitError):
        f()


def test_bad_options_and_logging_switches():
    with pytest.raises(ValueError):
        iris.offload(strategy="gpu")
    with pytest.raises(ValueError):
        iris.offload(return_type="complex")
    jit.set_jit_logging(True)
    assert jit.get_jit_logging() is True
    jit.set_jit_logging(False)
    assert jit.get_jit_logging() is False
    jit.set_jit_logging(None)
    jit.set_quantum_speculation(True)
    assert jit.get_quantum_speculation() is True
    jit.set_quantum_speculation(None)


@iris.offload(fastmath=True)
def sum_sq2_fast(x, y):
    return sum(x * x + y * y)


@iris.offload()
def sum_sq2(x, y):
    """Python's own sum over the elements of x*x + y*y."""
    return sum(x * x + y * y)


@iris.offload()
def any_negative(x):
    return any(x < 0)


class Body:
    def __init__(self, mass):
        self.mass = mass

    @iris.offload(return_type="float")
    def energy(self, v):
        return 0.5 * v * v


def test_offload_returns_the_native_function_dressed_as_the_original():
    f = vector_magnitude
    assert isinstance(f, jit.JitFunction)
    assert jit.compiled(f) is f
    assert f.__name__ == "vector_magnitude"
    assert f.__wrapped__(1.0, 2.0, 2.0) == 3.0
    assert sum_sq2.__doc__ == "Python's own sum over the elements of x*x + y*y."
    assert f.compile_time > 0
    # called through vectorcall (Py_TPFLAGS_HAVE_VECTORCALL): no argument tuple per call
    assert type(f).__flags__ & (1 << 11)
    # keyword arguments run the original function
    assert f(1.0, 2.0, z=2.0) == 3.0
    with pytest.raises(TypeError):
        f(1.0, 2.0)


def test_compiled_functions_pickle_by_reference_like_functions():
    import copy
    import pickle

    assert pickle.loads(pickle.dumps(vector_magnitude)) is vector_magnitude
    assert copy.deepcopy(sum_sq2) is sum_sq2
    assert "vector_magnitude(x, y, z)" in repr(vector_magnitude)


def test_methods_bind_and_fall_back_for_self():
    b = Body(2.0)
    assert b.energy(3.0) == 4.5
    assert Body.energy(b, 3.0) == 4.5


def test_scalar_fast_path_takes_floats_ints_bools_and_float_subclasses():
    class F(float):
        pass

    for args in [(1.0, 2.0, 3.0), (1, 2, 3), (True, 2.5, 3), (F(1.5), 2.0, -3.0)]:
        assert vector_magnitude(*args) == vector_magnitude.__wrapped__(*args), args
    with pytest.raises(TypeError):
        vector_magnitude(1.0, "2", 3.0)


def test_sum_of_an_element_wise_expression_over_buffers():
    for n in [0, 1, 2, 3, 7, 8, 9, 17, 1001]:
        x = array.array("d", [(i % 13) * 0.37 - 2.0 for i in range(n)])
        y = array.array("d", [(i % 7) * 1.1 for i in range(n)])
        want = 0
        for a, b in zip(x, y):
            want += a * a + b * b
        assert sum_sq2(x, y) == want, n
        assert sum_sq2_fast(x, y) == pytest.approx(want, rel=1e-12, abs=1e-12), n
    nan = array.array("d", [1.0, float("nan"), 2.0] * 5)
    assert math.isnan(sum_sq2_fast(nan, nan)) and math.isnan(sum_sq2(nan, nan))
    assert any_negative(array.array("d", [1.0, -2.0])) is True
    assert any_negative(array.array("d", [1.0, 2.0])) is False
    # over scalars Python raises (a float is not iterable): the original runs and raises
    with pytest.raises(TypeError):
        sum_sq2(1.0, 2.0)
    with pytest.raises(TypeError):
        sum_sq2(array.array("d", [1.0]), array.array("d", [1.0, 2.0]))


@iris.offload()
def sum_norms(x, y):
    return sum((x * x + y * y) ** 0.5)


def test_reductions_with_powers_run_in_python():
    # numpy's `array ** 0.5` is sqrt, Python's `float ** 0.5` is pow: Python decides
    assert jit.compiled(sum_norms) is None
    np = pytest.importorskip("numpy")
    x = np.array([2.0285093053495667e-112, 3.0])
    assert sum_norms(x, x) == sum_norms.__wrapped__(x, x)


def test_sums_over_numpy_arrays_equal_pythons():
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(3)
    for n in [0, 1, 2, 3, 5, 8, 9, 100, 100_003]:
        x, y = rng.standard_normal(n), rng.standard_normal(n) * 1e3
        want = sum_sq2.__wrapped__(x, y)
        assert sum_sq2(x, y) == want, n
        assert sum_sq2_fast(x, y) == pytest.approx(want, rel=1e-10, abs=1e-12), n
    # other dtypes reduce with numpy's own arithmetic (int32 wraps, float32 stays float32):
    # Python runs those
    big = np.array([100_000, 3], dtype=np.int32)
    assert sum_sq2(big, big) == sum_sq2.__wrapped__(big, big)
    f32 = np.array([0.1, 0.2, 0.3], dtype=np.float32)
    assert sum_sq2_fast(f32, f32) == sum_sq2_fast.__wrapped__(f32, f32)
    flags = np.array([True, False, True])
    assert any_negative(flags) == any_negative.__wrapped__(flags)
    # numpy broadcasts a length-1 array: the JIT defers to Python
    x = np.arange(4.0)
    assert sum_sq2(x, np.array([2.0])) == sum_sq2.__wrapped__(x, np.array([2.0]))


@iris.offload()
def nine(a, b, c, d, e, f, g, h, i):
    return a + b * c - d / e + f * g * h - i


def test_many_arguments_and_the_general_path():
    args = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0)
    assert jit.compiled(nine) is not None
    assert nine(*args) == nine.__wrapped__(*args)
    assert nine(*args[:8], i=9.0) == nine.__wrapped__(*args)
    with pytest.raises(ZeroDivisionError):
        nine(1.0, 2.0, 3.0, 4.0, 0.0, 6.0, 7.0, 8.0, 9.0)


def test_bare_compiled_expressions_raise_jit_fallback():
    f = jit.jit_compile("1 / x", ["x"])
    assert f(4.0) == 0.25
    with pytest.raises(jit.JitFallback):
        f(0.0)
    with pytest.raises(jit.JitFallback):
        f(x=1.0)
