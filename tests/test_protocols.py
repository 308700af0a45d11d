"""Properties of every protocol: pure, keyed on the sample id, and doing what its name says."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import toy_info, toy_split
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmark.contracts import DatasetInfo, Modality
from benchmark.protocols import PROTOCOLS, Condition, ProtocolError, all_patterns, apply_condition, expand_conditions


def cond(key: str) -> Condition:
    return Condition.parse(key)


def apply(split, key: str, seed: int = 0, stage: str = "test"):
    return apply_condition(split, cond(key), seed, stage)


#: A condition per randomised test protocol: deterministic given its key, different with another seed.
RANDOM_CONDITIONS = ["random_missing[0.5]", "mnar_value[a,0.4]", "mnar_class[a,0.4]", "gaussian_noise[a,3]",
                     "image_occlusion[img,3]", "mean_shift[b,3]", "correlation_shift[a,any_class]",
                     "correlation_shift[a,same_class]", "label_shift[0.6]"]


@pytest.mark.parametrize("key", RANDOM_CONDITIONS)
def test_randomised_protocols_are_deterministic_and_change_with_the_seed(key: str) -> None:
    s = toy_split(90)
    a, b, c = apply(s, key, 3), apply(s, key, 3), apply(s, key, 4)
    assert all(torch.equal(a.x[k], b.x[k]) for k in s.x) and torch.equal(a.mask, b.mask)
    changed = any(not torch.equal(a.x[k], c.x[k]) for k in s.x) or not torch.equal(a.mask, c.mask)
    assert changed or not torch.equal(a.y, c.y)


def test_every_test_protocol_is_covered_by_a_property_here() -> None:
    covered = {cond(k).protocol for k in RANDOM_CONDITIONS} | {"clean", "missing_modality", "missing_pattern",
                                                                "image_blur", "scale_shift"}
    assert {n for n, p in PROTOCOLS.items() if p.stage == "test"} == covered


@settings(max_examples=30, deadline=None)
@given(rate=st.floats(0.01, 1.0), seed=st.integers(0, 2**31 - 1))
def test_random_missing_keeps_one_modality_and_zero_fills(rate: float, seed: int) -> None:
    s = toy_split(60)
    a = apply_condition(s, Condition("random_missing", (rate,)), seed)
    assert bool((a.mask.sum(dim=1) >= 1).all())
    for j, name in enumerate(s.modality_names):
        assert bool((a.x[name][~a.mask[:, j]] == 0).all())


def test_random_missing_can_remove_everything_when_asked() -> None:
    a = apply(toy_split(200), "random_missing[0.9,0]")
    assert bool((a.mask.sum(dim=1) == 0).any())


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 1000), rate=st.sampled_from([0.1, 0.3, 0.5]))
def test_random_missing_depends_on_each_sample_alone(seed: int, rate: float) -> None:
    """Permuting or sub-setting the split permutes the masks: a sample's draw ignores the others."""
    s = toy_split(50)
    perm = torch.from_numpy(np.random.default_rng(seed).permutation(50))
    full = apply_condition(s, Condition("random_missing", (rate,)), seed).mask
    permuted = apply_condition(s.subset(perm), Condition("random_missing", (rate,)), seed).mask
    assert torch.equal(permuted, full[perm])
    head = apply_condition(s.subset(torch.arange(10)), Condition("random_missing", (rate,)), seed).mask
    assert torch.equal(head, full[:10])


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.6])
def test_random_missing_rate_holds_within_sampling_tolerance(rate: float) -> None:
    n = 4000
    a = apply(toy_split(n), f"random_missing[{rate}]").mask
    # Independent drops, with all-missing rows given back one modality: expected share missing
    # = rate - rate**3 / 3 for three modalities. Tolerance: 4 standard errors.
    expected = rate - rate**3 / 3
    assert abs((~a).float().mean().item() - expected) < 4 * np.sqrt(rate * (1 - rate) / (3 * n))


def test_missing_modality_removes_exactly_that_modality() -> None:
    s = toy_split(20)
    out = apply(s, "missing_modality[b]")
    assert not out.mask[:, 1].any() and out.mask[:, [0, 2]].all()
    assert bool((out.x["b"] == 0).all()) and torch.equal(out.x["a"], s.x["a"])


def test_every_missing_pattern_is_each_non_empty_subset() -> None:
    info = toy_info()
    grid = expand_conditions(["missing_pattern[*]"], info)
    assert len(grid) == 2**3 - 1
    s = toy_split(10)
    for c in grid:
        present = str(c.args[0]).split("+")
        m = apply_condition(s, c, 0).mask
        assert all(bool(m[:, j].all()) == (n in present) and bool(m[:, j].any()) == (n in present)
                   for j, n in enumerate(s.modality_names))


def test_many_modalities_give_a_seeded_sample_of_patterns_with_leave_one_out_and_only_one() -> None:
    names = [f"v{i}" for i in range(9)]
    patterns = all_patterns(names)
    assert patterns == all_patterns(names) and len(patterns) == 64 and len(set(patterns)) == 64
    sets = [set(p.split("+")) for p in patterns]
    for n in names:
        assert {n} in sets and set(names) - {n} in sets


def test_mnar_value_hits_its_rate_and_depends_on_the_values() -> None:
    s = toy_split(4000)
    out = apply(s, "mnar_value[a,0.3]")
    missing = ~out.mask[:, 0]
    assert abs(missing.float().mean().item() - 0.3) < 0.03
    score = s.x["a"].mean(dim=1)
    assert score[missing].mean() > score[~missing].mean() + 0.3
    assert out.mask[:, 1:].all()


def test_mnar_class_rate_depends_on_the_class() -> None:
    s = toy_split(6000)
    out = apply(s, "mnar_class[b,0.3]")
    rates = [(~out.mask[s.y == c, 1]).float().mean().item() for c in range(3)]
    for c, r in enumerate(rates):
        assert abs(r - 2 * 0.3 * (c + 0.5) / 3) < 0.03


@pytest.mark.parametrize("protocol,modality", [("gaussian_noise", "a"), ("gaussian_noise", "img"),
                                               ("image_blur", "img"), ("image_occlusion", "img"),
                                               ("mean_shift", "b"), ("scale_shift", "a")])
def test_corruption_grows_with_severity_and_touches_one_modality(protocol: str, modality: str) -> None:
    s = toy_split(200, img_shape=(1, 20, 20))
    distances = []
    for level in range(1, 6):
        out = apply(s, f"{protocol}[{modality},{level}]")
        distances.append(float((out.x[modality] - s.x[modality]).pow(2).mean()))
        assert torch.equal(out.mask, s.mask)
        assert all(torch.equal(out.x[k], s.x[k]) for k in s.x if k != modality)
    assert all(a < b for a, b in zip(distances, distances[1:], strict=False)), distances


def test_gaussian_noise_is_scaled_to_each_features_spread() -> None:
    s = toy_split(3000)
    s.x["a"][:, 0] *= 10.0
    out = apply(s, "gaussian_noise[a,4]")
    noise_sd = (out.x["a"] - s.x["a"]).std(dim=0)
    assert abs(noise_sd[0].item() / noise_sd[1].item() - 10.0) < 1.0


@pytest.mark.parametrize("pairing", ["same_class", "any_class"])
def test_correlation_shift_keeps_the_marginal_and_breaks_the_pairing(pairing: str) -> None:
    s = toy_split(300)
    out = apply(s, f"correlation_shift[a,{pairing}]")
    before = sorted(map(tuple, s.x["a"].tolist()))
    assert sorted(map(tuple, out.x["a"].tolist())) == before  # the same rows, re-paired
    assert not (out.x["a"] == s.x["a"]).all(dim=1).any()  # nobody keeps its own values
    assert torch.equal(out.x["b"], s.x["b"]) and torch.equal(out.y, s.y)
    rows = {tuple(r): i for i, r in enumerate(s.x["a"].tolist())}
    source = torch.tensor([rows[tuple(r)] for r in out.x["a"].tolist()])
    same = (s.y[source] == s.y).float().mean().item()
    assert same == 1.0 if pairing == "same_class" else same < 0.6


@pytest.mark.parametrize("lam", [0.2, 0.6, 0.8])
def test_label_shift_reaches_its_target_priors(lam: float) -> None:
    s = toy_split(300)
    proto = PROTOCOLS["label_shift"]
    target = proto.target_priors(s.y.numpy(), lam, 5)
    out = apply(s, f"label_shift[{lam}]", seed=5)
    assert len(out) == len(s) and len(set(out.ids.tolist())) == len(out)
    assert np.abs(np.bincount(out.y.numpy(), minlength=3) / len(out) - target).max() <= 1 / len(out)
    # Each resampled sample is an original one, unchanged.
    originals = {sid: i for i, sid in enumerate(s.ids)}
    for i in range(0, len(out), 37):
        j = originals[out.ids[i].split("~")[0]]
        assert torch.equal(out.x["a"][i], s.x["a"][j]) and out.y[i] == s.y[j]


def test_label_scarcity_removes_labels_stratified() -> None:
    s = toy_split(300)
    out = apply(s, "labels[0.1]", stage="train")
    assert int(out.labeled.sum()) == 30
    assert torch.all(out.y[~out.labeled] == -1)
    assert torch.equal(out.y[out.labeled], s.y[out.labeled])
    assert torch.bincount(out.y[out.labeled]).tolist() == [10, 10, 10]
    assert len(out) == len(s)  # unlabelled samples stay, without labels


def test_training_missingness_and_imbalance() -> None:
    s = toy_split(3000)
    out = apply(s, "train_missing[0.3]", stage="train")
    assert abs((~out.mask).float().mean().item() - (0.3 - 0.3**3 / 3)) < 0.02
    noisy = apply(s, "train_imbalance[b,5]", stage="train")
    assert torch.equal(noisy.x["a"], s.x["a"]) and not torch.equal(noisy.x["b"], s.x["b"])


@pytest.mark.parametrize("key,parameter,allowed", [
    ("random_missing[1.5]", "rate=1.5", "(0, 1]"),
    ("gaussian_noise[nonexistent,3]", "modality='nonexistent'", "['a', 'b', 'img']"),
    ("gaussian_noise[a,7]", "level=7.0", "[1, 2, 3, 4, 5]"),
    ("image_blur[a,2]", "modality='a'", "['img']"),
    ("missing_pattern[a+zzz]", "present='a+zzz'", "joined by '+'"),
    ("correlation_shift[a,sideways]", "pairing='sideways'", "[same_class, any_class]"),
])
def test_a_wrong_parameter_names_the_protocol_parameter_and_allowed_values(key, parameter, allowed) -> None:
    with pytest.raises(ProtocolError) as err:
        expand_conditions([key], toy_info())
    msg = str(err.value)
    assert msg.startswith(cond(key).protocol + ":") and parameter in msg and allowed in msg


def test_unknown_protocol_and_wrong_arity_are_refused() -> None:
    with pytest.raises(ProtocolError, match="known: clean"):
        expand_conditions(["no_such_thing"], toy_info())
    with pytest.raises(ProtocolError, match="takes 1 parameter"):
        expand_conditions(["label_shift[0.2,3]"], toy_info())
    with pytest.raises(ProtocolError, match="modality is required"):
        expand_conditions(["missing_modality"], toy_info())


def test_condition_keys_round_trip_and_defaults_are_dropped() -> None:
    for key in ("clean", "random_missing[0.3]", "missing_modality[pixels]", "gaussian_noise[a,3]"):
        assert Condition.parse(key).key == key
    assert [c.key for c in expand_conditions(["random_missing[0.3,1]"], toy_info())] == ["random_missing[0.3]"]


def test_star_expands_only_to_the_modalities_a_protocol_applies_to() -> None:
    info = DatasetInfo("t", (Modality("a", "tabular", (3,)), Modality("img", "image", (1, 4, 4))), 2)
    assert [c.key for c in expand_conditions(["image_blur[*,1]"], info)] == ["image_blur[img,1]"]
    assert len(expand_conditions(["gaussian_noise[*,*]"], info)) == 10
