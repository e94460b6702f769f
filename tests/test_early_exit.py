"""Stopping policies, oracles, live vs replay, the RCS regulariser."""

from dataclasses import replace

import pytest
import torch
from torch import nn

from workbench.errors import WorkbenchError
from workbench.methods.early_exit import (
    DynamicConfidence,
    FixedT,
    Oracle,
    StopPolicy,
    TopKCutoff,
    first_correct,
    optimal_cutoff,
    outcome,
)
from workbench.methods.rcs import rcs_penalty, step_outputs, tet_rcs_objective
from workbench.models import event_snn
from workbench.network import SpikingNetwork, simulate
from workbench.neurons import SpikingCell


@pytest.fixture(scope="module")
def run():
    torch.manual_seed(0)
    net = SpikingNetwork([("fc1", nn.Linear(12, 24)), ("s1", SpikingCell(0.5)),
                          ("fc2", nn.Linear(24, 4))], (12,))
    x = torch.rand(64, 12)
    labels = simulate(net, x, 40).predictions()[-1].clone()
    labels[:8] = (labels[:8] + 1) % 4  # some samples the net never gets right
    return net, x, labels, simulate(net, x, 16)


def brute_first(rule_per_step, T, B):
    stops = []
    for b in range(B):
        t_stop = T
        for t in range(1, T + 1):
            if rule_per_step(t, b):
                t_stop = t
                break
        stops.append(t_stop)
    return stops


def test_dynamic_confidence_stops_at_first_step_over_threshold(run):
    _, _, _, trajectory = run
    policy = DynamicConfidence(threshold=0.6, scale=2.0)
    conf = torch.softmax(trajectory.readout / 2.0, -1).amax(-1)
    expected = brute_first(lambda t, b: conf[t - 1, b] > 0.6, trajectory.T, trajectory.B)
    assert policy.stop_times(trajectory).tolist() == expected


def test_topk_stops_at_first_step_over_its_beta(run):
    _, _, labels, trajectory = run
    policy = TopKCutoff(0.1).calibrate(trajectory, labels)
    top = trajectory.readout.topk(2, -1).values
    gap = top[..., 0] - top[..., 1]
    expected = brute_first(lambda t, b: gap[t - 1, b] > policy.betas[t - 1], trajectory.T,
                           trajectory.B)
    assert policy.stop_times(trajectory).tolist() == expected
    assert min(policy.betas) > 0


def test_oracles_follow_their_definitions(run):
    _, _, labels, trajectory = run
    correct = trajectory.predictions() == labels
    first = brute_first(lambda t, b: bool(correct[t - 1, b]), trajectory.T, trajectory.B)
    stable = brute_first(lambda t, b: bool(correct[t - 1:, b].all()), trajectory.T, trajectory.B)
    assert first_correct(trajectory, labels).tolist() == first
    assert optimal_cutoff(trajectory, labels).tolist() == stable
    assert (optimal_cutoff(trajectory, labels) >= first_correct(trajectory, labels)).all()


def test_oracle_bounds_every_policy(run):
    """Stopping at min(oracle step, policy step) is at least as accurate and as fast as the
    policy: the oracle bounds every policy at equal or lower mean latency."""
    _, _, labels, trajectory = run
    oracle = first_correct(trajectory, labels)
    policies = [FixedT(t) for t in (1, 4, 16)] + [
        DynamicConfidence(threshold=c, scale=2.0) for c in (0.4, 0.7, 0.95)] + [
        TopKCutoff(e).calibrate(trajectory, labels) for e in (0.0, 0.1, 0.3)]
    for policy in policies:
        stops = policy.stop_times(trajectory)
        mine = outcome(trajectory, labels, stops)
        bound = outcome(trajectory, labels, torch.minimum(oracle, stops))
        assert bound.accuracy >= mine.accuracy and bound.mean_steps <= mine.mean_steps


@pytest.mark.parametrize("make", [
    lambda labels, tr: FixedT(5),
    lambda labels, tr: DynamicConfidence(threshold=0.7, scale=2.0),
    lambda labels, tr: TopKCutoff(0.05).calibrate(tr, labels),
], ids=["fixed", "dynamic-confidence", "topk"])
def test_live_and_replay_agree(run, make):
    net, x, labels, trajectory = run
    policy = make(labels, trajectory)
    replay = policy.stop_times(trajectory)
    live = simulate(net, x, trajectory.T, stop=policy.rule())
    assert live.stop_steps.tolist() == replay.tolist()
    stopped = trajectory.stopped_at(replay)
    assert torch.allclose(live.readout, stopped.readout, atol=1e-5)
    for name in live.spike_counts:
        assert torch.equal(live.spike_counts[name], stopped.spike_counts[name])
    assert outcome(trajectory, labels, replay).spikes_per_sample == pytest.approx(
        float(live.spikes_per_sample().mean()))


def test_calibration_returns_a_new_policy_and_sessions_do_not_share_state(run):
    """Two dashboard sessions calibrating one shared base with different settings: each gets
    its own frozen policy and the base is untouched (it is shared through a cache)."""
    from dataclasses import FrozenInstanceError

    _, _, labels, trajectory = run
    shared = DynamicConfidence(tolerance=0.0)
    first = shared.calibrate(trajectory, labels)
    second = replace(shared, scale=16.0).calibrate(trajectory, labels)
    assert shared.threshold is None and shared.scale is None
    assert first.scale != 16.0 and second.scale == 16.0
    assert first == shared.calibrate(trajectory, labels)  # calibrating again changes nothing
    base = TopKCutoff(0.05)
    a, b = base.calibrate(trajectory, labels), replace(base, epsilon=0.3).calibrate(trajectory,
                                                                                     labels)
    assert base.betas is None and a.betas != b.betas
    assert isinstance(first, StopPolicy) and isinstance(a, StopPolicy)
    with pytest.raises(FrozenInstanceError):
        first.threshold = 0.5
    assert len({first, second, a, b}) == 4  # hashable: usable as cache keys


def test_calibration_is_deterministic(run):
    _, _, labels, trajectory = run
    a = DynamicConfidence().calibrate(trajectory, labels)
    b = DynamicConfidence().calibrate(trajectory, labels)
    assert (a.threshold, a.scale) == (b.threshold, b.scale)
    assert TopKCutoff(0.05).calibrate(trajectory, labels) == TopKCutoff(0.05).calibrate(
        trajectory, labels)


def test_dynamic_confidence_meets_its_target_on_calibration_data(run):
    _, _, labels, trajectory = run
    policy = DynamicConfidence().calibrate(trajectory, labels)
    reached = outcome(trajectory, labels, policy.stop_times(trajectory)).accuracy
    assert reached >= float(trajectory.accuracy_curve(labels)[-1]) - 1e-9


@pytest.mark.parametrize("make, message", [
    (lambda: DynamicConfidence(threshold=1.0), r"c\* must lie in \(0, 1\)"),
    (lambda: DynamicConfidence(threshold=0.0), r"c\* must lie in \(0, 1\)"),
    (lambda: DynamicConfidence(threshold=0.5, scale=-1.0), "scale K must be > 0"),
    (lambda: TopKCutoff(epsilon=1.0), r"epsilon must lie in \[0, 1\)"),
    (lambda: TopKCutoff(epsilon=-0.1), r"epsilon must lie in \[0, 1\)"),
    (lambda: FixedT(0), "T must be a whole number"),
])
def test_bad_policy_parameters(make, message):
    with pytest.raises(WorkbenchError, match=message):
        make()


def test_uncalibrated_policies_say_so(run):
    trajectory = run[3]
    with pytest.raises(WorkbenchError, match="calibrate"):
        TopKCutoff(0.1).stop_times(trajectory)
    with pytest.raises(WorkbenchError, match="calibrate"):
        DynamicConfidence(scale=1.0).stop_times(trajectory)


def test_oracle_policy_wraps_the_functions(run):
    _, _, labels, trajectory = run
    assert torch.equal(Oracle(labels).stop_times(trajectory), first_correct(trajectory, labels))


def test_rcs_counts_only_correct_samples_and_has_gradients():
    torch.manual_seed(0)
    net = event_snn(channels=(4, 8))
    x = torch.rand(3, 6, 2, 16, 16).round()  # batch-first event frames
    labels = torch.tensor([0, 1, 2])
    layers = {}
    trajectory = simulate(net, x.transpose(0, 1), 6, grad=True,
                          observe=lambda t, n, z, s: layers.setdefault(n, []).append((z, s.v)))
    thresholds = {n: c.base_threshold() for n, c in net.cells().items()}
    wrong = (trajectory.readout.argmax(-1)[-2:] != labels).any(0)
    penalty = rcs_penalty(layers, thresholds, trajectory.readout, labels)
    assert (penalty[wrong] == 0).all()
    right_labels = trajectory.readout[-1].argmax(-1).detach()
    penalty = rcs_penalty(layers, thresholds, trajectory.readout, right_labels)
    assert (penalty > 0).all()
    loss = tet_rcs_objective(6, alpha=0.1)(net, x, right_labels)
    loss.backward()
    assert net.layers.conv1.weight.grad.abs().sum() > 0
    assert torch.allclose(step_outputs(trajectory.readout).sum(0), trajectory.readout[-1])


def test_stopping_with_dropout_on_is_refused():
    net = event_snn(channels=(4, 8)).train()
    with pytest.raises(WorkbenchError, match="dropout off"):
        simulate(net, torch.rand(4, 2, 2, 16, 16), stop=torch.tensor([1, 2]))


def test_time_shared_dropout_keeps_one_mask_per_run():
    from workbench.network import TimeSharedDropout

    drop = TimeSharedDropout(0.5).train()
    x = torch.ones(3, 20)
    first, second = drop(x), drop(x)
    assert torch.equal(first, second)  # same mask at every step of a run
    drop.new_run()
    assert not torch.equal(first, drop(x))


def test_event_base_calibration_is_reproducible():
    """AOI calibrates with dropout on; its masks are seeded, so β_t never changes run to run."""
    from workbench.methods.early_exit_study import base_run

    first, second = base_run.__wrapped__("events"), base_run.__wrapped__("events")
    assert torch.equal(first.calibration.readout, second.calibration.readout)
    assert (TopKCutoff(0.01).calibrate(first.calibration, first.calibration_labels).betas
            == TopKCutoff(0.01).calibrate(second.calibration, second.calibration_labels).betas)


def test_conversion_keeps_dropout_as_an_identity_until_calibration_switches_it_on():
    """The QCFS digits CNN has Dropout(0.1) before its readout: the SNN keeps it, time-shared and
    off (eval), so its test runs equal those of the SNN without it; on, it changes the readout."""
    from workbench.convert import QCFS, convert
    from workbench.methods.early_exit_study import calibration_trajectory
    from workbench.models import digits_cnn
    from workbench.network import TimeSharedDropout

    torch.manual_seed(0)
    ann = digits_cnn("qcfs").eval()
    for m in ann.modules():  # small clips: every layer of the untrained CNN fires within 8 steps
        if isinstance(m, QCFS):
            m.scale.data.fill_(0.5)
    x = torch.rand(24, 1, 8, 8)
    net = convert(ann, x, initial="half")
    drops = [m for m in net.modules() if isinstance(m, TimeSharedDropout)]
    assert [m.p for m in drops] == [0.1] and not net.training
    without = SpikingNetwork([(n, m) for n, m in net.layers.named_children()
                              if not isinstance(m, TimeSharedDropout)], net.input_shape)
    off = simulate(net, x, 8)
    assert off.spike_counts["spike4"].sum() > 0
    assert torch.equal(off.readout, simulate(without, x, 8).readout)
    on = calibration_trajectory(net, x, 8, seed=3)
    assert not net.training, "calibration hands the network back in eval mode"
    assert not torch.allclose(on.readout, off.readout)
    assert torch.equal(on.readout, calibration_trajectory(net, x, 8, seed=3).readout)
    assert not torch.equal(on.readout, calibration_trajectory(net, x, 8, seed=4).readout)


@pytest.mark.parametrize("name", ["digits_qcfs", "events"])
def test_bases_calibrate_with_dropout_on_and_never_run_test_data_with_it(name, monkeypatch):
    from workbench.methods import early_exit_study
    from workbench.network import TimeSharedDropout

    calls = []

    def spy(net, inputs, *args, **kwargs):
        calls.append((inputs, any(m.training and m.p > 0 for m in net.modules()
                                  if isinstance(m, TimeSharedDropout))))
        return simulate(net, inputs, *args, **kwargs)

    monkeypatch.setattr(early_exit_study, "simulate", spy)
    base = early_exit_study.base_run.__wrapped__(name)
    dropout_on = [inputs for inputs, on in calls if on]
    assert len(dropout_on) == 1, "exactly one run, the calibration, has dropout on"
    assert len(dropout_on[0]) == base.calibration.B or dropout_on[0].shape[1] == base.calibration.B
    assert not any(on for inputs, on in calls if inputs is base.test_inputs
                   or torch.equal(inputs, base.test_inputs)), "test data ran with dropout on"
    assert not base.net.training
