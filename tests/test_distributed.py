"""zoo.distributed.finish_process_group: ends a launcher run's process group (barrier first only
after a completed run) and is a no-op without one."""
import pytest
import torch.distributed as dist

from zoo.distributed import finish_process_group


@pytest.mark.parametrize("completed", [True, False])
def test_destroys_an_initialised_group(tmp_path, monkeypatch, completed):
    calls = []
    monkeypatch.setattr(dist, "barrier", lambda *a, **k: calls.append("barrier"))
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        finish_process_group(completed)
        assert not dist.is_initialized()
        assert calls == (["barrier"] if completed else [])
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_no_group_is_a_no_op():
    assert not dist.is_initialized()
    finish_process_group(True)
    finish_process_group(False)
    assert not dist.is_initialized()
