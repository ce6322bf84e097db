"""``@iris.offload``: compile numeric Python functions with Iris's Cranelift JIT.

The function's source is taken with ``inspect`` and ``ast``: simple assignments followed by a
``return`` are lowered to the JIT's language (arithmetic, comparisons, ``a if c else b``,
``sum/any/all`` generators over ``range`` or buffers, ``math`` functions, ...). Anything else,
and any call the JIT cannot run exactly as Python would (an error Python raises, an int beyond
64 bits, an unsupported argument), runs the original Python function: results never differ.
"""

from __future__ import annotations

import ast
import copy
import functools
import inspect
import os
import textwrap
from typing import Any, Callable, List, Optional, Tuple, TypeVar

from ._iris import (
    JitCompileError,
    JitFallback,
    JitFunction,
    JitLimitError,
    get_jit_logging,
    jit_compile,
)
from ._iris import set_jit_logging as _set_jit_logging

__all__ = [
    "JitCompileError",
    "JitFunction",
    "JitLimitError",
    "compiled",
    "get_jit_logging",
    "get_quantum_speculation",
    "lower",
    "offload",
    "set_jit_logging",
    "set_quantum_speculation",
]

F = TypeVar("F", bound=Callable[..., Any])

_quantum: Optional[bool] = None


def set_quantum_speculation(enabled: Optional[bool]) -> None:
    """Compile later functions as several variants and dispatch to the fastest (``None``:
    follow ``IRIS_JIT_QUANTUM``). Results never change."""
    global _quantum
    _quantum = enabled


def get_quantum_speculation() -> bool:
    """Whether functions compiled now use quantum speculation."""
    if _quantum is None:
        return os.environ.get("IRIS_JIT_QUANTUM") == "1"
    return _quantum


def set_jit_logging(enabled: Optional[bool], env_var: Optional[str] = None) -> None:
    """Turns the JIT's debug log on or off; ``None`` follows ``IRIS_JIT_LOG`` (or ``env_var``
    when given: on when it is ``"1"``)."""
    if enabled is None and env_var is not None:
        enabled = os.environ.get(env_var) == "1"
    _set_jit_logging(enabled)


class _BareGenerators(ast.NodeTransformer):
    """``ast.unparse`` writes ``sum(x for x in y)`` as ``sum((x for x in y))``; the JIT's
    parser takes the bare form, so generator arguments are unparsed on their own."""

    def __init__(self) -> None:
        self.parts: dict[str, str] = {}

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if len(node.args) == 1 and not node.keywords and isinstance(node.args[0], ast.GeneratorExp):
            key = f"__iris_generator_{len(self.parts)}__"
            self.parts[key] = ast.unparse(node.args[0])[1:-1]
            node.args = [ast.Name(id=key, ctx=ast.Load())]
        return node


def _unparse(expr: ast.expr) -> str:
    t = _BareGenerators()
    text = ast.unparse(t.visit(copy.deepcopy(expr)))
    for _ in range(len(t.parts) + 1):
        for key, part in t.parts.items():
            text = text.replace(key, part)
    return text


def _is_power(node: ast.AST) -> bool:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
        return True
    if isinstance(node, ast.Call):
        f = node.func
        return (isinstance(f, ast.Name) and f.id == "pow") or (
            isinstance(f, ast.Attribute) and f.attr == "pow"
        )
    return False


def _lower(fn: Callable[..., Any]) -> Optional[Tuple[str, List[str], Optional[str]]]:
    """Like :func:`lower`; a final ``return sum(expr)`` (``any``/``all``) over a non-generator
    expression comes back as ``expr`` and the reducer's name: the JIT evaluates ``expr``
    element-wise over buffers and reduces the values in one pass, as Python's ``sum`` does over
    the elements of ``x*x + y*y`` for arrays."""
    try:
        source = textwrap.dedent(inspect.getsource(fn))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        return None
    func = next((n for n in tree.body if isinstance(n, ast.FunctionDef)), None)
    if func is None:
        return None
    a = func.args
    if a.vararg or a.kwarg or a.kwonlyargs or a.posonlyargs or a.defaults:
        return None
    params = [p.arg for p in a.args]
    body = list(func.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    if not body or not isinstance(body[-1], ast.Return) or body[-1].value is None:
        return None
    lines = []
    for stmt in body[:-1]:
        if (
            isinstance(stmt, ast.Assign)
            and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name)
        ):
            lines.append(f"{stmt.targets[0].id} = {_unparse(stmt.value)}")
        else:
            return None
    ret = body[-1].value
    reducer: Optional[str] = None
    if (
        isinstance(ret, ast.Call)
        and isinstance(ret.func, ast.Name)
        and ret.func.id in ("sum", "any", "all")
        and len(ret.args) == 1
        and not ret.keywords
        and not isinstance(ret.args[0], (ast.GeneratorExp, ast.Name))
    ):
        if any(_is_power(n) for n in ast.walk(ret.args[0])):
            # numpy evaluates `array ** 0.5` as sqrt and `array ** 2` as a square, not with
            # `pow` as Python floats do: the results may differ in the last bit
            return None
        reducer = ret.func.id
        ret = ret.args[0]
    lines.append(_unparse(ret))
    return "\n".join(lines), params, reducer


def lower(fn: Callable[..., Any]) -> Optional[Tuple[str, List[str]]]:
    """The JIT source and parameter names of ``fn``, or ``None`` if it cannot be lowered."""
    lowered = _lower(fn)
    if lowered is None:
        return None
    src, params, reducer = lowered
    if reducer is None:
        return src, params
    *stmts, last = src.split("\n")
    return "\n".join([*stmts, f"{reducer}({last})"]), params


def offload(
    strategy: str = "jit", return_type: Optional[str] = None, fastmath: bool = False
) -> Callable[[F], F]:
    """Marks a CPU-heavy function for native execution.

    ``strategy="jit"`` calls the compiled code (loops and buffer calls with the GIL released);
    ``strategy="actor"`` releases the GIL for every call, so calls from several threads run in
    parallel. A compiled function is returned as a :class:`JitFunction` carrying the original's
    name, docs and ``__wrapped__``, which the interpreter calls without a Python frame in
    between. Functions the JIT rejects run as plain Python. ``return_type`` is ``"float"``,
    ``"int"`` or ``"bool"``; ``fastmath=True`` allows reassociating float sums (SIMD lanes,
    partial sums across cores: results may then differ within rounding).

    ``return sum(expr)`` over arrays (``sum(x*x + y*y)``) reduces ``expr``'s element-wise values
    in one pass without building the intermediate array.
    """
    if strategy not in ("jit", "actor"):
        raise ValueError(f'strategy must be "jit" or "actor", not {strategy!r}')
    if return_type not in (None, "float", "int", "bool"):
        raise ValueError(f'return_type must be "float", "int" or "bool", not {return_type!r}')

    def decorate(fn: F) -> F:
        native: Optional[JitFunction] = None
        lowered = _lower(fn)
        if lowered is not None:
            src, params, reducer = lowered
            try:
                native = jit_compile(
                    src,
                    params,
                    return_type,
                    fastmath,
                    get_quantum_speculation(),
                    reduce=reducer,
                    fallback=fn,
                    release_gil=True if strategy == "actor" else None,
                )
            except JitCompileError:
                native = None
        if native is not None:
            functools.update_wrapper(native, fn)
            native.__iris_jit__ = native  # type: ignore[attr-defined]
            return native  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return fn(*args, **kwargs)

        wrapper.__iris_jit__ = None  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def compiled(fn: Callable[..., Any]) -> Optional[JitFunction]:
    """The compiled code behind an ``@offload`` function (``None`` if it runs in Python)."""
    return getattr(fn, "__iris_jit__", None)
