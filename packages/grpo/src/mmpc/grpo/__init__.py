"""mmpc.grpo: GRPO alignment of completion models (see docs/grpo.md).

Public names are imported lazily, so ``import mmpc.grpo`` does not load Lightning or peft:
``GRPOModule``, ``GRPODataModule``, the rewards (``JsonFormatReward``, ``TitleSimilarityReward``,
``ImageSimilarityReward``, ``RewardCombiner``, ``Reward``), the pure maths (``group_advantages``,
``policy_loss``, ``k3_kl``, ``completion_mask``, ``completion_token_logps``) and
``plot_reward_curve``.
"""

from __future__ import annotations

from mmpc.metrics.lazy import lazy_exports

_EXPORTS = {
    "GRPOModule": "mmpc.grpo.module",
    "Rollout": "mmpc.grpo.rollout",
    "GRPODataModule": "mmpc.grpo.data",
    "Reward": "mmpc.grpo.rewards",
    "JsonFormatReward": "mmpc.grpo.rewards",
    "TitleSimilarityReward": "mmpc.grpo.rewards",
    "ImageSimilarityReward": "mmpc.grpo.rewards",
    "RewardCombiner": "mmpc.grpo.rewards",
    "CLIPImageEncoder": "mmpc.grpo.encoders",
    "STLPIPSImageEncoder": "mmpc.grpo.encoders",
    "LoRASpec": "mmpc.grpo.policy",
    "load_policy": "mmpc.grpo.policy",
    "group_advantages": "mmpc.grpo.maths",
    "policy_loss": "mmpc.grpo.maths",
    "k3_kl": "mmpc.grpo.maths",
    "completion_mask": "mmpc.grpo.maths",
    "completion_token_logps": "mmpc.grpo.maths",
    "plot_reward_curve": "mmpc.grpo.plotting",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
