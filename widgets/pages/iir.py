"""'Fewer timesteps (IIR)': every stage of the T = 5 → 1 chain and its baselines, from cache.

Pick a stage or a baseline: accuracy, per-layer firing rates, a raster of one sample and the
energy; a chart follows accuracy and energy along the chain. Training never runs on page load
(the models come from the cache); "Retrain" reruns the chain on the page's worker with a
progress bar and can be cancelled, and a cancelled run leaves the cached models untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import holoviews as hv
import panel as pn
import param

from widgets import live, plots
from widgets.energy_view import energy_panel
from widgets.page import Page
from widgets.worker import Job
from workbench.energy import energy_report, load_profiles
from workbench.methods import iir_study
from workbench.methods.iir import SETTINGS, Cancelled, IIRConfig, cached_chain
from workbench.methods.iir_study import DATASETS, LABELS, IIRResult, IIRSetting, study
from workbench.network import simulate
from workbench.trajectory import silent_layers
from workbench.zoo import load_model

STEPS_PER_RUN = IIRConfig().total_epochs * 3  # chain + two equal-budget baselines


@dataclass(frozen=True)
class Chain:
    """The study's result of one dataset and, per setting, (setting, T, test accuracy, Loihi
    joules per inference) for the chain chart."""

    result: IIRResult
    rows: tuple[tuple[str, int, float, float], ...]


@lru_cache(maxsize=2)
def chain(dataset: str) -> Chain:
    """Every stage and baseline of ``dataset`` on the test split (cleared by a retraining)."""
    result = iir_study.run(IIRSetting(dataset))
    rows = []
    for setting in SETTINGS:
        trajectory, net, metrics = result.runs[setting]
        summary = energy_report(trajectory, net).summary()
        loihi = summary[(summary.device == "loihi") & (summary.model == "snn")]
        rows.append((setting, metrics["T"], float(trajectory.accuracy_curve(result.labels)[-1]),
                     float(loihi.joules_per_inference.iloc[0])))
    return Chain(result, tuple(rows))


class IIRSettings(param.Parameterized):
    """Knobs of the page (one instance per browser session)."""

    dataset = param.Selector(default="digits", objects=list(DATASETS))
    setting = param.Selector(default="T1", objects=list(SETTINGS),
                             doc="a stage of the chain (T5 … T1) or a baseline")
    sample = param.Integer(0, bounds=(0, 0), doc="test sample in the raster")
    device = param.Selector(default="loihi", objects=list(load_profiles().devices))
    memory = param.Boolean(False, doc="add the memory-traffic estimate")


class IIRPage(Page):
    """The 'Fewer timesteps (IIR)' page; ``result`` is the :class:`Chain` on show."""

    title = "Fewer timesteps (IIR)"
    settings_class = IIRSettings
    study = "iir"
    related_studies = ("iir-deep",)  # the deeper network, compute-matched
    slow_knobs = ("dataset",)

    def __init__(self, **values) -> None:
        super().__init__(**values)
        self.models = pn.pane.Markdown("Models: from the cache.", sizing_mode="stretch_width")
        self.retrain_button = pn.widgets.Button(label="Retrain the chain", color="primary")
        self.cancel_button = pn.widgets.Button(label="Cancel", color="warning",
                                               disabled=True)
        self.retrain_button.on_click(self._retrain)
        self.cancel_button.on_click(lambda _: self.worker.cancel())

    def bounds(self) -> None:
        self.settings.param.sample.bounds = (0, len(study(self.settings.dataset)[1]["test"][1]) - 1)

    def compute(self, request: IIRSetting, job: Job | None) -> Chain:
        return chain(request.dataset)

    def _show(self, value: Chain) -> None:
        self.settings.param.sample.bounds = (0, len(value.result.labels) - 1)
        self.settings.sample = min(self.settings.sample, len(value.result.labels) - 1)
        super()._show(value)

    def _retrain(self, _=None) -> int:
        """Rerun the chain and baselines on the worker (progress bar, cancellable)."""
        dataset = self.settings.dataset
        self.retrain_button.disabled, self.cancel_button.disabled = True, False
        self.models.object = f"Retraining the {dataset} chain…"

        def work(job: Job) -> tuple[Chain, str]:
            epochs = []

            def on_epoch(label: str) -> bool:
                epochs.append(label)
                job.progress(len(epochs), STEPS_PER_RUN, f"Retraining: {label}…")
                return not job.cancelled()

            model, _ = DATASETS[dataset]
            ann, data, _ = study(dataset)
            try:
                cached_chain(ann, load_model(model, progress=False)[1], data, IIRConfig(),
                             progress=False, on_epoch=on_epoch, retrain=True)
                study.cache_clear()
                chain.cache_clear()
                message = "Retrained; the new checkpoints are cached."
            except Cancelled:
                message = "Cancelled: the cached models are unchanged."
            return chain(dataset), message

        def show(value: tuple[Chain, str]) -> None:
            self.retrain_button.disabled, self.cancel_button.disabled = False, True
            self.models.object = value[1]
            self._show(value[0])

        return self.run(work, show, progress_text=f"Retraining the {dataset} chain…")

    def chain(self, result: Chain):
        """Accuracy along the chain T = 5 → 1, with the T = 1 baselines."""
        rows, dataset = result.rows, result.result.setting.dataset
        stages = [r for r in rows if r[0].startswith("T")]
        baselines = [r for r in rows if not r[0].startswith("T")]
        accuracy = hv.Curve([(r[1], r[2]) for r in stages], "T", "accuracy",
                            label="IIR chain").opts(color="#1f77b4")
        marks = hv.Points([(r[1], r[2], LABELS[r[0]]) for r in baselines], ["T", "accuracy"],
                          "setting", label="baselines at T=1").opts(
            size=10, marker="triangle", color="#d62728", tools=["hover"])
        t1 = next(r for r in rows if r[0] == "T1")
        return (accuracy * marks).opts(
            title=(f"Accuracy and energy along the IIR chain ({dataset}): T=1 "
                   f"{t1[2]:.3f} at {t1[3]:.2g} J on Loihi"),
            invert_xaxis=True, ylim=(0, 1.02), responsive=True, min_height=280,
            shared_axes=False, legend_position="bottom_left")

    def chain_energy(self, result: Chain):
        """Loihi energy per inference along the chain."""
        stages = [r for r in result.rows if r[0].startswith("T")]
        return hv.Curve([(r[1], r[3]) for r in stages], "T", "Loihi J per inference").opts(
            color="#2ca02c", invert_xaxis=True, responsive=True, min_height=250,
            shared_axes=False, logy=True,
            title=f"Energy per inference along the chain ({result.result.setting.dataset})")

    def rates(self, result: Chain, setting: str) -> live.Frame:
        """Per-layer firing rates of the stage shown (a live view: the stage knob replays)."""
        trajectory, _, _ = result.result.runs[setting]
        rates = trajectory.mean_firing_rates()
        silent = len(silent_layers(rates))
        return live.Frame(
            title=f"Firing rates, {LABELS[setting]}: {silent} of {len(rates)} layers silent",
            sources={"bars": {"x": list(rates), "top": list(rates.values())}},
            factors=list(rates), ranges={"y": (0.0, 1.1 * max(max(rates.values()), 1e-3))})

    def raster(self, result: Chain, setting: str, sample: int):
        _, data, _ = study(result.result.setting.dataset)
        trajectory, net, metrics = result.result.runs[setting]
        sample = min(sample, len(result.result.labels) - 1)
        one = simulate(net, data["test"][0][sample:sample + 1], metrics["T"],
                       record=list(net.cells()))
        accuracy = float(trajectory.accuracy_curve(result.result.labels)[-1])
        return plots.spike_raster(one, title=(
            f"{LABELS[setting]}: test accuracy {accuracy:.3f}; sample {sample} makes "
            f"{int(one.spikes_per_sample()[0])} spikes in {metrics['T']} step(s)"))

    def __panel__(self) -> pn.viewable.Viewable:
        p, result = self.settings.param, self.param.result
        widgets = pn.Param(self.settings, widgets={"sample": {"type": pn.widgets.IntInput}},
                           show_name=False, width=300)
        energy_views = energy_panel(
            self, lambda chain, setting, memory: energy_report(
                *chain.result.runs[setting][:2], include_memory=memory),
            [result, *map(self.later, (p.setting, p.memory))], self.later(p.device))
        intro = pn.pane.Markdown(
            "**IIR-SNN** (Chowdhury, Rathi & Roy, 2021) trains a direct-input SNN at T = 5, then "
            "retrains it at T = 4, 3, 2, 1, each stage starting from the previous one, with "
            "trainable thresholds and leaks. Trained at T = 1 from scratch, spikes vanish layer "
            "by layer; the chain keeps enough activity for the thresholds to be learned. The "
            "baselines get the same total number of epochs.", sizing_mode="stretch_width")
        return self.frame(widgets, intro,
                          self.view(self.chain, result),
                          self.view(self.chain_energy, result),
                          self.live(live.bars("layer", "spikes per neuron per step"),
                                    self.rates, result, p.setting),
                          self.view(self.raster, result, p.setting, p.sample),
                          "### Energy", energy_views,
                          extra=(self.retrain_button, self.cancel_button, self.models))
