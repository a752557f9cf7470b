"""GRPO rewards: JSON format, MiniLM title similarity, image similarity, the combiner."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from skimage import data as skdata
from torch.testing import assert_close

from mmpc.completion.backends.base import BackendContext, Renderer
from mmpc.grpo.encoders import CLIPImageEncoder, STLPIPSImageEncoder
from mmpc.grpo.rewards import (
    ImageSimilarityReward,
    JsonFormatReward,
    RewardCombiner,
    SentenceEmbedder,
    TitleSimilarityReward,
    render_seed,
)
from mmpc.metrics.backbones import minilm_path
from mmpc.metrics.errors import MissingWeightsError

GOOD = '{"title": "Red ceramic mug"}'
FENCED = '```json\n{"title": "Blue kettle"}\n```'
EMPTY = '{"title": "  "}'
WRONG_KEY = '{"name": "Mug"}'


def test_json_format_reward() -> None:
    reward = JsonFormatReward("title")
    assert reward([GOOD, FENCED, EMPTY, WRONG_KEY, "no json", ""]) == [1, 1, 0, 0, 0, 0]


@pytest.fixture(scope="module")
def minilm() -> SentenceEmbedder:
    return SentenceEmbedder()


@pytest.mark.slow
def test_minilm_embeddings_match_sentence_transformers(minilm: SentenceEmbedder) -> None:
    from sentence_transformers import SentenceTransformer

    texts = ["Red ceramic coffee mug, 350 ml", "Wireless gaming mouse with RGB lights"]
    reference = SentenceTransformer(str(minilm_path()), device="cpu").encode(
        texts, convert_to_tensor=True, normalize_embeddings=True
    )
    assert_close(minilm(texts), reference.float(), atol=1e-5, rtol=1e-4)


def test_title_similarity_reward(minilm: SentenceEmbedder) -> None:
    reward = TitleSimilarityReward(scale=2.0, encoder=minilm)
    truth = ["Red ceramic coffee mug", "Red ceramic coffee mug", "Red ceramic coffee mug"]
    values = reward(
        ['{"title": "Red ceramic coffee mug"}', '{"title": "Laptop battery charger"}', "oops"],
        title=truth,
    )
    assert values[0] == pytest.approx(2.0, abs=1e-5)
    e = minilm(["Laptop battery charger", "Red ceramic coffee mug"])
    assert values[1] == pytest.approx(2.0 * float(e[0] @ e[1]), abs=1e-5)
    assert values[1] < 1.0
    assert values[2] == 0.0
    with pytest.raises(ValueError, match="title"):
        reward([GOOD])


def _photos() -> dict[str, Image.Image]:
    return {
        "astronaut": Image.fromarray(skdata.astronaut()),
        "coffee": Image.fromarray(skdata.coffee()),
        "chelsea": Image.fromarray(skdata.chelsea()),
    }


class KeywordRenderer(Renderer):
    """Renders a prompt as the photo it names, shifted by a seed-dependent offset."""

    def __init__(self) -> None:
        self.photos = _photos()
        self.calls: list[tuple[list[str], list[int]]] = []

    def setup(self, ctx: BackendContext) -> None:
        self.ctx = ctx

    def render(
        self, prompts: list[str], *, item_ids: list[str], seeds: list[int]
    ) -> list[Image.Image]:
        self.calls.append((prompts, seeds))
        out = []
        for prompt, seed in zip(prompts, seeds, strict=True):
            name = next((n for n in self.photos if n in prompt), "chelsea")
            arr = np.roll(np.asarray(self.photos[name]), seed % 7, axis=1)
            out.append(Image.fromarray(arr))
        return out


@pytest.fixture(scope="module")
def stlpips_encoder() -> STLPIPSImageEncoder:
    return STLPIPSImageEncoder(size=96)


def test_stlpips_encoder_ranks_real_photos(stlpips_encoder: STLPIPSImageEncoder) -> None:
    p = _photos()
    rotated = p["astronaut"].rotate(8)
    e = stlpips_encoder([p["astronaut"], rotated, p["chelsea"], p["astronaut"]])
    assert e.shape == (4, 1152)
    assert_close(e.norm(dim=-1), torch.ones(4))
    assert_close(e[0] @ e[3], torch.tensor(1.0))
    assert float(e[0] @ e[1]) > float(e[0] @ e[2])


def test_stlpips_encoder_reads_covers_as_the_image_metrics_do(
    stlpips_encoder: STLPIPSImageEncoder,
) -> None:
    photo = _photos()["chelsea"].convert("RGB")
    rgba = photo.convert("RGBA")
    rgba.putalpha(0)  # fully transparent
    white = Image.new("RGB", photo.size, (255, 255, 255))
    e = stlpips_encoder([rgba, white, photo, np.asarray(photo)])
    assert_close(e[0], e[1])  # transparency is composited on white, as the metrics do
    assert_close(e[2], e[3])  # an (H, W, 3) uint8 array reads like its image
    assert float(e[0] @ e[2]) < 0.999


def test_image_similarity_reward_shares_seeds_in_group(
    stlpips_encoder: STLPIPSImageEncoder,
) -> None:
    renderer = KeywordRenderer()
    reward = ImageSimilarityReward(renderer, stlpips_encoder, scale=4.0, renders=4)
    p = _photos()
    completions = [
        '{"prompt": "an astronaut portrait"}',
        '{"prompt": "a cat, chelsea"}',
        "not json",
        '{"prompt": "a cup of coffee"}',
    ]
    ids = ["A", "A", "B", "B"]  # two prompts, G = 2
    truth = [p["astronaut"], p["astronaut"], p["coffee"], p["coffee"]]
    values = reward(completions, item_id=ids, image=truth)
    prompts, seeds = renderer.calls[0]
    assert len(prompts) == 12  # 3 parsed answers × 4 renders
    assert seeds[0:4] == seeds[4:8] == [render_seed("A", k) for k in range(4)]
    assert seeds[8:12] == [render_seed("B", k) for k in range(4)]
    assert seeds[8:12] != seeds[0:4]
    assert values[2] == 0.0
    assert values[0] > values[1]  # the astronaut prompt is rewarded over the cat prompt
    renders = renderer.render(["astronaut"] * 4, item_ids=["A"] * 4, seeds=seeds[0:4])
    expected = 4.0 * float((stlpips_encoder(renders) @ stlpips_encoder([p["astronaut"]])[0]).mean())
    assert values[0] == pytest.approx(expected, abs=1e-5)
    assert reward.label.startswith("ST-LPIPS")


def _tiny_clip(folder: Path) -> Path:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    torch.manual_seed(0)
    config = CLIPConfig(
        text_config={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "vocab_size": 99,
        },
        vision_config={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=8,
    )
    CLIPModel(config).save_pretrained(folder)
    CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    ).save_pretrained(folder)
    return folder


def test_clip_encoder_matches_clip_model(tmp_path: Path) -> None:
    from transformers import CLIPImageProcessor, CLIPModel

    folder = _tiny_clip(tmp_path / "clip")
    encoder = CLIPImageEncoder(folder)
    images = list(_photos().values())
    model = CLIPModel.from_pretrained(folder).eval()
    pixels = CLIPImageProcessor.from_pretrained(folder)(images=images, return_tensors="pt")
    with torch.no_grad():
        vision = model.vision_model(pixel_values=pixels["pixel_values"])
        expected = F.normalize(model.visual_projection(vision.pooler_output), dim=-1)
    assert_close(encoder(images), expected)


def test_clip_encoder_missing_weights_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MissingWeightsError, match="CLIP weights not loadable"):
        CLIPImageEncoder(tmp_path / "nothing-here")


def test_combiner_weights_and_components() -> None:
    fmt = JsonFormatReward("title")

    def length_bonus(completions: list[str], **_: object) -> list[float]:
        return [len(c) / 10 for c in completions]

    combiner = RewardCombiner({"json_format": fmt, "length": length_bonus}, {"length": 0.5})
    total, parts = combiner([GOOD, "x" * 10])
    assert_close(parts["json_format"], torch.tensor([1.0, 0.0]))
    assert_close(parts["length"], torch.tensor([len(GOOD) / 10, 1.0]))
    assert_close(total, torch.tensor([1.0 + 0.5 * len(GOOD) / 10, 0.5]))
    with pytest.raises(ValueError, match="unknown rewards"):
        RewardCombiner({"json_format": fmt}, {"nope": 1.0})
