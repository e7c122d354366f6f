"""What the GPU is and what it can do: its description and its measured copy bandwidth.

``gpu_details`` reads torch's device properties and, where ``nvidia-smi`` is present, the
driver version and clocks (read only; nothing here changes a setting of the card).
"""
from __future__ import annotations

import shutil
import subprocess

SMI_FIELDS = ("driver_version", "clocks.sm", "clocks.max.sm", "clocks.mem", "clocks.max.mem",
              "power.limit", "temperature.gpu", "pstate")


def _nvidia_smi() -> dict:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return {"nvidia_smi": "not found on PATH"}
    try:
        done = subprocess.run([exe, f"--query-gpu={','.join(SMI_FIELDS)}", "--format=csv,noheader",
                               "--id=0"], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired) as err:
        return {"nvidia_smi": f"failed: {err}"}
    if done.returncode != 0:
        return {"nvidia_smi": f"exit {done.returncode}: {done.stderr.strip()[:200]}"}
    values = [v.strip() for v in done.stdout.strip().splitlines()[0].split(",")]
    return {f"smi_{k.replace('.', '_')}": v for k, v in zip(SMI_FIELDS, values)}


def gpu_details() -> dict:
    """Multiprocessors, L2, memory, capability, CUDA/cuDNN versions, driver and clocks."""
    import torch

    props = torch.cuda.get_device_properties(0)
    info = {
        "device": torch.cuda.get_device_name(0),
        "capability": ".".join(map(str, torch.cuda.get_device_capability(0))),
        "sm_count": props.multi_processor_count,
        "l2_cache_bytes": getattr(props, "L2_cache_size", None),
        "device_memory_bytes": props.total_memory,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
    }
    try:
        info["sm_clock_mhz_now"] = torch.cuda.clock_rate(0)
    except Exception as err:  # needs pynvml; the nvidia-smi fields below say the same
        info["sm_clock_mhz_now"] = f"unreadable ({type(err).__name__})"
    info.update(_nvidia_smi())
    return info


def measure_copy_bandwidth(gib=1.0) -> float:
    """GB/s of a device-to-device copy of ``gib`` GiB, counting the bytes read and written."""
    import torch
    from triton.testing import do_bench

    n = int(gib * 2**30)
    src = torch.randint(0, 255, (n,), dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    ms = do_bench(lambda: dst.copy_(src), return_mode="median")
    return 2 * n / (ms * 1e-3) / 1e9
