"""Small, honest CPU measurements for notebooks: time, memory and the bytes a training step holds.

* ``time_call``: wall and CPU time of a call, repeated; timings on a shared machine wobble, so it
  reports the median and the best.
* ``peak_memory_mib``: the peak increase of the process's resident set size while a call runs,
  sampled in a background thread (psutil, so the units are right on every platform): large
  tensors are allocated with ``mmap`` and returned on free, so the peak over the baseline is the
  working memory of the call.
* ``measure_step``: one optimiser step, with the bytes of weights, gradients, optimiser state and
  the activations autograd saves; ``weight_bytes``, ``trainable_parameters`` and friends.
"""
from __future__ import annotations

import statistics
import threading
import time
from contextlib import contextmanager


def _rss_bytes() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def time_call(fn, *, repeat: int = 3, warmup: int = 1) -> dict:
    """Run ``fn()`` ``warmup`` times, then ``repeat`` times; median and best wall and CPU ms.

    On a busy machine the best (minimum) of several calls is the least disturbed estimate.
    """
    for _ in range(warmup):
        fn()
    walls, cpus = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return {"wall_ms": 1000 * statistics.median(walls), "cpu_ms": 1000 * statistics.median(cpus),
            "wall_min_ms": 1000 * min(walls), "cpu_min_ms": 1000 * min(cpus)}


def peak_memory_mib(fn, *, interval_s: float = 0.0005) -> float:
    """Peak increase of the resident set size (MiB) while ``fn()`` runs."""
    import gc

    gc.collect()
    base = _rss_bytes()
    peak = [base]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(interval_s)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        fn()
    finally:
        done.set()
        thread.join()
    peak[0] = max(peak[0], _rss_bytes())
    return max(0.0, (peak[0] - base) / 2**20)


@contextmanager
def stopwatch():
    """``with stopwatch() as t: ...``; afterwards ``t["wall_s"]`` and ``t["cpu_s"]``."""
    result = {}
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield result
    finally:
        result["wall_s"] = time.perf_counter() - wall
        result["cpu_s"] = time.process_time() - cpu


def _storage_key(tensor):
    try:
        return (tensor.untyped_storage().data_ptr(), tensor.untyped_storage().nbytes())
    except Exception:  # pragma: no cover - exotic tensor subclasses
        return (id(tensor), tensor.numel() * tensor.element_size())


def tensor_bytes(tensors) -> int:
    """Bytes of distinct storages among ``tensors`` (views of one buffer count once)."""
    seen = {}
    for tensor in tensors:
        if tensor is None:
            continue
        key = _storage_key(tensor)
        seen[key] = key[1]
    return int(sum(seen.values()))


def weight_bytes(model) -> int:
    """Bytes of every parameter and buffer, including 4-bit packed weights and their constants."""
    tensors = list(model.parameters()) + list(model.buffers())
    for parameter in model.parameters():
        state = getattr(parameter, "quant_state", None)
        if state is not None:
            tensors += [t for t in (state.absmax, getattr(state, "code", None)) if t is not None]
            nested = getattr(state, "state2", None)
            if nested is not None:
                tensors += [t for t in (nested.absmax, nested.code) if t is not None]
    return tensor_bytes(tensors)


def measure_step(model, optimizer, loss_fn) -> dict:
    """Run one optimiser step and report its memory and time.

    ``loss_fn()`` computes the loss (forward pass). Activations are the tensors autograd saves
    for the backward pass (counted once per storage, excluding the weights themselves).
    Returns bytes of ``weights``, ``gradients``, ``optimizer`` and ``activations``, their sum
    as ``peak`` (everything alive just before backward frees the activations), and times.
    """
    import torch

    param_keys = {_storage_key(p) for p in model.parameters()}
    saved = {}

    def pack(tensor):
        key = _storage_key(tensor)
        if key not in param_keys:
            saved[key] = key[1]
        return tensor

    with stopwatch() as clock:
        optimizer.zero_grad(set_to_none=True)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            loss = loss_fn()
        loss.backward()
        optimizer.step()
    grads = tensor_bytes(p.grad for p in model.parameters() if p.grad is not None)
    opt_state = tensor_bytes(
        value for state in optimizer.state.values() for value in state.values()
        if torch.is_tensor(value) and value.dim() > 0
    )
    report = {
        "weights": weight_bytes(model),
        "gradients": grads,
        "optimizer": opt_state,
        "activations": int(sum(saved.values())),
        "loss": float(loss.detach()),
        **clock,
    }
    report["peak"] = report["weights"] + report["gradients"] + report["optimizer"] + \
        report["activations"]
    return report


def trainable_parameters(model) -> int:
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def total_parameters(model) -> int:
    """Parameters counted as the model's real size (a 4-bit packed byte holds two weights)."""
    total = 0
    for parameter in model.parameters():
        state = getattr(parameter, "quant_state", None)
        total += int(state.shape.numel()) if state is not None else parameter.numel()
    return total
