"""The bench configuration: plain dataclasses read by jsonargparse from YAML and ``--a.b=v``.

Every value that changes a stage's results is part of that stage's fingerprint, so editing the
YAML re-runs exactly the stages it affects.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from mmpc.apps.schema import ReportConfig
from mmpc.metrics.errors import InputError

TASKS = ("i2t", "t2i")
SERVED_CLASS = "OpenAIChatBackend"
"""The generator class (``mmpc.completion.backends.served``) of a served completer."""
SERVED_TRANSPORT = ("base_url", "api_key_env", "timeout_s", "max_concurrency", "retry", "launch")
"""A served generator's settings that change where and how fast answers come, never the answers
(the same as the backend leaves out of ``describe()``): not part of a stage's fingerprint."""


@dataclass
class CatalogConfig:
    """Where the items come from.

    Attributes:
        preset: the embedded synthetic catalogue's preset (``tiny``, ``demo``, ``paper``).
        seed: seed of the synthetic catalogue.
        path: an existing catalogue folder (e.g. from ``mmpc data amazon``) used instead of the
            synthetic one; it is read in place, never copied.
    """

    preset: str = "demo"
    seed: int = 0
    path: str | None = None


def _identity(init_args: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in init_args.items() if k not in SERVED_TRANSPORT}


@dataclass
class CompleterConfig:
    """One completer: a generator backend (and, for T→I, a renderer) of ``mmpc.completion``.

    Attributes:
        name: the completer's name in every table (a safe folder name).
        tasks: ``i2t`` and/or ``t2i``.
        generator: ``{"class_path": ..., "init_args": {...}}`` of a ``Generator`` backend.
        renderer: the same for the T→I ``Renderer`` (required when ``t2i`` is in ``tasks``).
        task_init_args: per task, generator ``init_args`` that override the shared ones (e.g.
            ``max_new_tokens`` 128 for titles, 256 for prompts).
        batch_size: items per predict batch.
        seconds_per_item: per task, accelerator seconds per item (generation, plus the render
            for T→I), used only by ``--dry-run``'s estimate.
        on_parse_failure: T→I only: ``skip`` renders nothing for an unparsable prompt, ``title``
            renders the product title instead (the record keeps the parse error and the report
            counts it).
        price_per_million_tokens: served completers only: ``{prompt: USD, completion: USD}``
            per million tokens; the report then shows the cost of the tokens the server counted.
    """

    name: str
    tasks: list[str] = field(default_factory=lambda: ["i2t", "t2i"])
    generator: dict[str, Any] = field(default_factory=dict)
    renderer: dict[str, Any] | None = None
    task_init_args: dict[str, dict[str, Any]] = field(default_factory=dict)
    batch_size: int = 8
    seconds_per_item: dict[str, float] = field(default_factory=dict)
    on_parse_failure: str = "skip"
    price_per_million_tokens: dict[str, float] | None = None

    def __post_init__(self) -> None:
        if self.price_per_million_tokens is not None:
            unknown = set(self.price_per_million_tokens) - {"prompt", "completion"}
            if unknown or any(v < 0 for v in self.price_per_million_tokens.values()):
                raise InputError(
                    "needs non-negative 'prompt' and/or 'completion' prices, got "
                    f"{self.price_per_million_tokens}",
                    f"completers[{self.name}].price_per_million_tokens",
                )

    @property
    def served(self) -> bool:
        """Whether the generator is an OpenAI-compatible endpoint (``OpenAIChatBackend``)."""
        return str(self.generator.get("class_path", "")).rpartition(".")[2] == SERVED_CLASS

    def settings(self) -> dict[str, Any]:
        """What enters the fingerprint of the completer's stages: every field but the price, and
        for a served generator none of :data:`SERVED_TRANSPORT` (so a moved endpoint or another
        concurrency resumes the stage instead of redoing it). A completer that is not served and
        has no price gives ``asdict`` minus one key: old run folders stay up to date."""
        out = asdict(self)
        out.pop("price_per_million_tokens")
        if self.served:
            gen = dict(out["generator"])
            gen["init_args"] = _identity(gen.get("init_args") or {})
            out["generator"] = gen
            out["task_init_args"] = {t: _identity(a) for t, a in out["task_init_args"].items()}
        return out

    def generator_spec(self, task: str) -> dict[str, Any]:
        """The generator spec for ``task``: shared ``init_args`` updated by ``task_init_args``."""
        args = {
            **dict(self.generator.get("init_args") or {}),
            **dict(self.task_init_args.get(task, {})),
        }
        return {**self.generator, "init_args": args}


@dataclass
class CQBenchConfig:
    """Content-quality metrics.

    Attributes:
        bertscore_model: ``"minilm"`` (the packaged all-MiniLM-L6-v2, labelled as a stand-in), a
            local model folder (e.g. roberta-large), or None to leave BERTScore out.
        bertscore_num_layers: layer whose embeddings BERTScore uses (None: the package default).
        lpips: ``"st-lpips"`` (offline, labelled ST-LPIPS), ``"alex"`` (needs the torchvision
            AlexNet file) or ``"none"``.
        lpips_backbone: local AlexNet file for ``lpips: alex``.
        clip_model: open_clip architecture for CLIP similarity, or None (reported unavailable).
        clip_pretrained: open_clip tag or local checkpoint for ``clip_model``.
        batch_size: items per metric batch.
    """

    bertscore_model: str | None = "minilm"
    bertscore_num_layers: int | None = 6
    lpips: str = "st-lpips"
    lpips_backbone: str | None = None
    clip_model: str | None = None
    clip_pretrained: str | None = None
    batch_size: int = 16


@dataclass
class FeaturesConfig:
    """Item features for RecBench and the imputation baselines.

    Attributes:
        text_model: sentence-transformers folder (None: the packaged all-MiniLM-L6-v2).
        image_backend: ``stlpips-alexnet`` (offline stand-in), ``open_clip``, ``timm``,
            ``torchvision`` (see ``mmpc.recsys.features.ImageEncoder``).
        image_model: model name for the image backend.
        image_weights: local weights for the image backend.
        image_size: side of the square image input (covers and renders are resized to it).
        imputation: baselines that fill the masked modality without a completer.
        knn_k: neighbours of the ``knn`` baseline.
    """

    text_model: str | None = None
    image_backend: str = "stlpips-alexnet"
    image_model: str | None = None
    image_weights: str | None = None
    image_size: int = 224
    imputation: list[str] = field(default_factory=lambda: ["zeros", "mean", "knn"])
    knn_k: int = 10

    def __post_init__(self) -> None:
        if self.image_size < 16:
            raise InputError(f"must be at least 16, got {self.image_size}", "features.image_size")
        if self.knn_k < 1:
            raise InputError(f"must be at least 1, got {self.knn_k}", "features.knn_k")


@dataclass
class RecModelConfig:
    """A recommender core of ``mmpc.recsys.models`` (by class name) and its hyperparameters."""

    name: str
    hparams: dict[str, Any] = field(default_factory=dict)
    lr: float = 1e-3
    weight_decay: float = 0.0


@dataclass
class RecBenchConfig:
    """Recommendation benchmark.

    Attributes:
        models: the recommenders.
        seeds: one training per seed and condition (paired with the GT run of the same seed).
        max_epochs / stopping_step: training length and MMRec-style early stopping.
        batch_size: BPR pairs per batch.
        per_category: train one model per category (the paper); False trains once on the whole
            catalogue and splits the test users by category (cheap, for small demos).
        seconds_per_epoch: accelerator seconds per epoch (training + validation) of one
            category, and ``expected_epochs`` the epochs a run lasts with early stopping; both
            only feed ``--dry-run``'s estimate.
    """

    models: list[RecModelConfig] = field(
        default_factory=lambda: [
            RecModelConfig("VBPR"),
            RecModelConfig("BM3"),
            RecModelConfig("FREEDOM"),
        ]
    )
    seeds: list[int] = field(default_factory=lambda: [0])
    max_epochs: int = 1000
    stopping_step: int = 20
    batch_size: int = 2048
    per_category: bool = True
    seconds_per_epoch: float = 2.0
    expected_epochs: int = 200

    def __post_init__(self) -> None:
        if not self.seeds:
            raise InputError("needs at least one seed, got []", "recbench.seeds")


@dataclass
class TaskResources:
    """What one Ray task of a stage kind asks for (``mmpc.apps.bench.executors.ray``).

    Attributes:
        num_cpus: logical CPUs; the task also sets its torch thread count to this (at least 1).
        num_gpus: GPUs, fractional to share one (``0.25``: four trainings per GPU).
        shards: ``complete`` only: workers one completer × task is split over (whole batches
            each, through the exactly-once writer).
    """

    num_cpus: float = 1.0
    num_gpus: float = 0.0
    shards: int = 1


def _default_resources() -> dict[str, TaskResources]:
    return {
        kind: TaskResources()
        for kind in ("catalog", "complete", "grpo", "cqbench", "features", "recbench")
    }


@dataclass
class RayConfig:
    """The Ray executor (``executor: ray``).

    Attributes:
        address: None starts a local Ray on this machine (loopback node address, no dashboard,
            usage statistics off, token authentication on); ``auto`` or ``ray://host:port``
            joins an existing cluster.
        num_cpus / num_gpus: logical resources of a local Ray (None: what Ray detects).
        object_store_memory: bytes of a local Ray's object store (None: Ray's default).
        max_retries: times Ray re-runs a task whose worker died (stages resume from their files).
        isolate_network: a local Ray may only start where the loopback is the only network
            interface; ``mmpc bench`` re-runs itself in a private network namespace
            (``unshare -n``, as root) when it can, and stops with one line otherwise.
        resources: per stage kind (first segment of a stage name: ``catalog``, ``complete``,
            ``grpo``, ``cqbench``, ``features``, ``recbench``); a missing kind asks for 1 CPU.
        warm_up: before the first stage, start as many workers as tasks of the smallest kind
            can run at once and let each import what a stage task imports (torch, Lightning,
            the stage graph: ~10 s per process on the 2-core dev box), all in parallel; the
            driver log reports it apart from the stages. False: each worker pays it in its
            first task.
    """

    address: str | None = None
    num_cpus: int | None = None
    num_gpus: int | None = None
    object_store_memory: int | None = None
    max_retries: int = 3
    isolate_network: bool = True
    resources: dict[str, TaskResources] = field(default_factory=_default_resources)
    warm_up: bool = True


@dataclass
class GRPORunConfig:
    """One GRPO run of the bench: a LoRA adapter for ``completer`` on ``task``.

    The stage ``grpo/<completer>/<task>`` trains the adapter on the catalogue's GRPO sample;
    the derived completer ``<completer>+grpo`` (the same generator spec plus
    ``adapter: <stage>/adapter``) then completes the CQBench sample like every other completer.

    Attributes:
        completer: one of ``completers``: its generator is the model the adapter is trained for.
        task: ``i2t`` or ``t2i`` (one of the completer's tasks).
        config: a ``mmpc grpo fit`` YAML (e.g. ``apps/configs/grpo/demo_t2i.yaml``, relative to
            the working folder or the checkout); its ``model:`` and ``data:`` sections are used,
            its ``trainer:`` section is not (the bench owns training length, logging, checkpoints).
        model: ``GRPOModule`` init args that override the YAML's (e.g. ``group_size``).
        data: ``GRPODataModule`` init args that override the YAML's (e.g. ``batch_size``).
        max_steps: optimiser steps of the run.
        checkpoint_every_n_steps: how often ``<stage>/checkpoints/last.ckpt`` is rewritten (the
            point a killed run resumes from).
        validate_every_n_steps: answer the held-out GRPO items (``data: {val_items: N}``)
            greedily before training and after every this many steps, logging ``val/reward``
            (0: never).
        seconds_per_step: accelerator seconds per step, used only by ``--dry-run``'s estimate.
    """

    completer: str
    task: str = "i2t"
    config: str | None = None
    model: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    max_steps: int = 100
    checkpoint_every_n_steps: int = 1
    validate_every_n_steps: int = 0
    seconds_per_step: float = 0.0

    @property
    def tuned_name(self) -> str:
        """The derived completer's name, ``<completer>+grpo``."""
        return f"{self.completer}+grpo"

    @property
    def stage_name(self) -> str:
        """``grpo/<completer>/<task>``."""
        return f"grpo/{self.completer}/{self.task}"


@dataclass
class BenchConfig:
    """The whole study. The run folder is ``runs_dir/name``.

    ``executor`` picks who runs the stages: ``local`` (one after another in this process) or
    ``ray`` (each stage a Ray task once its inputs exist; ``ray`` holds the options). Neither
    enters any stage's fingerprint: both executors write the same run folder.
    """

    name: str = "demo"
    runs_dir: str = "runs"
    accelerator: str = "cpu"
    catalog: CatalogConfig = field(default_factory=CatalogConfig)
    completers: list[CompleterConfig] = field(default_factory=list)
    grpo: list[GRPORunConfig] = field(default_factory=list)
    cqbench: CQBenchConfig = field(default_factory=CQBenchConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    recbench: RecBenchConfig = field(default_factory=RecBenchConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    executor: Literal["local", "ray"] = "local"
    ray: RayConfig = field(default_factory=RayConfig)

    def completer(self, name: str) -> CompleterConfig:
        """The completer called ``name`` (ValueError naming the known ones otherwise)."""
        for comp in self.completers:
            if comp.name == name:
                return comp
        known = [c.name for c in self.completers]
        raise ValueError(f"grpo: completer {name!r} is not one of the completers {known}")


def run_dir(cfg: BenchConfig) -> Path:
    """``<runs_dir>/<name>``: the run folder of ``cfg``."""
    return Path(cfg.runs_dir) / cfg.name
