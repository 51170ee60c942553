import pytest
import torch

from fgrlhf import device as D


def test_an_explicit_bf16_setting_is_kept():
    assert D.resolve_bf16(True, "cpu") is True
    assert D.resolve_bf16(False, "cpu") is False


def test_auto_bf16_on_cpu_follows_the_cpu_flags(monkeypatch):
    monkeypatch.setattr(D, "cpu_has_fast_bf16", lambda: True)
    assert D.resolve_bf16(None, "cpu") is True
    monkeypatch.setattr(D, "cpu_has_fast_bf16", lambda: False)
    assert D.resolve_bf16(None, torch.device("cpu")) is False


def test_cpu_flags_are_read_from_proc_cpuinfo():
    flags = open("/proc/cpuinfo").read().split()
    assert D.cpu_has_fast_bf16() == ("avx512_bf16" in flags or "amx_bf16" in flags)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
def test_auto_bf16_on_cuda_follows_the_gpu():
    assert D.resolve_bf16(None, "cuda") == torch.cuda.is_bf16_supported()
