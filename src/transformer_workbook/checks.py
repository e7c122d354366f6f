"""Assertions for notebook tests whose failure messages teach.

Every check raises ``AssertionError`` with what is wrong, the numbers that show it, and what
to look at. Test cells in the notebooks use these so that a learner's first failure already
points at the bug.
"""
from __future__ import annotations

import sys


def _plain(value, what: str):
    """``value``, unless its type could misreport itself: a class the notebook defined (which
    can make ``==`` or ``bool()`` say anything) or a tensor subclass that intercepts torch's
    functions. A test compares the values an exercise returns; those are plain tensors,
    numbers, strings and containers."""
    kind = type(value)
    if kind.__module__ == "__main__":
        raise AssertionError(
            f"{what} is a {kind.__name__}, a class defined in the notebook; return plain "
            "tensors, numbers or strings as the exercise asks")
    torch = sys.modules.get("torch")
    if torch is not None and issubclass(kind, torch.Tensor) \
            and kind not in (torch.Tensor, torch.nn.Parameter) \
            and kind.__torch_function__ is not torch.Tensor.__torch_function__:
        raise AssertionError(
            f"{what} is a {kind.__name__}, a tensor subclass with its own __torch_function__; "
            "return a plain torch.Tensor")
    return value


def check(condition, message: str) -> None:
    """Fail with ``message`` unless ``condition`` holds."""
    if not bool(_plain(condition, "the value checked")):
        raise AssertionError(message)


def check_shape(tensor, expected: tuple, what: str) -> None:
    actual = tuple(getattr(_plain(tensor, what), "shape", ()))
    if actual != tuple(expected):
        raise AssertionError(f"{what} has shape {actual}, expected {tuple(expected)}")


def check_finite(tensor, what: str, hint: str = "") -> None:
    import torch

    tensor = torch.as_tensor(_plain(tensor, what))
    bad = (~torch.isfinite(tensor)).sum().item()
    if bad:
        raise AssertionError(
            f"{what} has {bad} NaN or infinite values" + (f". {hint}" if hint else "")
        )


def check_close(actual, expected, what: str, hint: str = "", *, atol: float = 1e-5,
                rtol: float = 1e-4) -> None:
    """Compare tensors; on failure report the shapes or the largest difference and a hint."""
    import torch

    actual = torch.as_tensor(_plain(actual, what))
    expected = torch.as_tensor(expected)
    suffix = f". {hint}" if hint else ""
    if actual.shape != expected.shape:
        raise AssertionError(
            f"{what} has shape {tuple(actual.shape)}, expected {tuple(expected.shape)}{suffix}"
        )
    actual = actual.detach().double()
    expected = expected.detach().double()
    if not torch.isfinite(actual).all() and torch.isfinite(expected).all():
        raise AssertionError(f"{what} contains NaN or infinite values{suffix}")
    if not torch.allclose(actual, expected, atol=atol, rtol=rtol, equal_nan=True):
        diff = (actual - expected).abs().nan_to_num(float("inf"))
        where = tuple(int(i) for i in torch.nonzero(diff == diff.max())[0]) if diff.dim() else ()
        raise AssertionError(
            f"{what} is wrong: largest difference {diff.max().item():.3g} at index {where} "
            f"(got {actual[where].item():.6g}, expected {expected[where].item():.6g}){suffix}"
        )
