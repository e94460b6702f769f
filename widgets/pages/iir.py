"""'Fewer timesteps (IIR)': every stage of the T = 5 → 1 chain and its baselines, from cache.

Pick a stage or a baseline: accuracy, per-layer firing rates, a raster of one sample and the
energy; a chart follows accuracy and energy along the chain. Training never runs on page load
(the models come from the cache); "Retrain" reruns the chain in a worker thread with a progress
bar and can be cancelled, and a cancelled run leaves the cached models untouched.
"""

from __future__ import annotations

import threading

import holoviews as hv
import panel as pn
import param

from widgets import plots
from widgets.energy_view import energy_panel
from workbench.energy import energy_report, load_profiles
from workbench.methods.iir import SETTINGS, Cancelled, IIRConfig, cached_chain
from workbench.methods.iir_study import DATASETS, LABELS, evaluate_setting, study
from workbench.network import simulate
from workbench.trajectory import silent_layers
from workbench.zoo import load_model

STEPS_PER_RUN = IIRConfig().total_epochs * 3  # chain + two equal-budget baselines


@pn.cache(max_items=64)
def run(dataset: str, setting: str, version: int):
    return evaluate_setting(dataset, setting)


@pn.cache(max_items=64)
def chain_summary(dataset: str, version: int):
    """Accuracy and Loihi energy of every setting (for the chain chart)."""
    _, data, _ = study(dataset)
    rows = []
    for setting in SETTINGS:
        trajectory, net, metrics = run(dataset, setting, version)
        summary = energy_report(trajectory, net).summary()
        loihi = summary[(summary.device == "loihi") & (summary.model == "snn")]
        rows.append((setting, metrics["T"], float(trajectory.accuracy_curve(data["test"][1])[-1]),
                     float(loihi.joules_per_inference.iloc[0])))
    return rows


class IIRSettings(param.Parameterized):
    """Knobs of the page (one instance per browser session)."""

    dataset = param.Selector(default="digits", objects=list(DATASETS))
    setting = param.Selector(default="T1", objects=list(SETTINGS),
                             doc="a stage of the chain (T5 … T1) or a baseline")
    sample = param.Integer(0, bounds=(0, 396), doc="test sample in the raster")
    device = param.Selector(default="loihi", objects=list(load_profiles().devices))
    memory = param.Boolean(False, doc="add the memory-traffic estimate")


class IIRPage(pn.viewable.Viewer):
    """The 'Fewer timesteps (IIR)' page."""

    title = "Fewer timesteps (IIR)"
    version = param.Integer(0, precedence=-1, doc="bumped when the models are retrained")

    def __init__(self, **params) -> None:
        self.settings = IIRSettings(**params)
        super().__init__()
        self._cancel = threading.Event()
        self.progress = pn.indicators.Progress(value=0, max=STEPS_PER_RUN, visible=False,
                                               sizing_mode="stretch_width")
        self.status = pn.pane.Markdown("Models: from the cache.", sizing_mode="stretch_width")
        self.retrain_button = pn.widgets.Button(name="Retrain the chain", button_type="primary")
        self.cancel_button = pn.widgets.Button(name="Cancel", button_type="warning",
                                               disabled=True)
        self.retrain_button.on_click(self._retrain)
        self.cancel_button.on_click(lambda _: self._cancel.set())

    def chain(self, dataset, version):
        """Accuracy along the chain T = 5 → 1, with the T = 1 baselines."""
        rows = chain_summary(dataset, version)
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

    def chain_energy(self, dataset, version):
        """Loihi energy per inference along the chain."""
        stages = [r for r in chain_summary(dataset, version) if r[0].startswith("T")]
        return hv.Curve([(r[1], r[3]) for r in stages], "T", "Loihi J per inference").opts(
            color="#2ca02c", invert_xaxis=True, responsive=True, min_height=250,
            shared_axes=False, logy=True, title=f"Energy per inference along the chain ({dataset})")

    def rates(self, dataset, setting, version):
        trajectory, _, _ = run(dataset, setting, version)
        rates = trajectory.mean_firing_rates()
        silent = len(silent_layers(rates))
        return hv.Bars(list(rates.items()), "layer", "spikes per neuron per step").opts(
            title=f"Firing rates, {LABELS[setting]}: {silent} of {len(rates)} layers silent",
            responsive=True, min_height=250, shared_axes=False, framewise=True)

    def raster(self, dataset, setting, sample, version):
        _, data, _ = study(dataset)
        _, net, metrics = run(dataset, setting, version)
        one = simulate(net, data["test"][0][sample:sample + 1], metrics["T"],
                       record=list(net.cells()))
        accuracy = float(run(dataset, setting, version)[0].accuracy_curve(data["test"][1])[-1])
        return plots.spike_raster(one, title=(
            f"{LABELS[setting]}: test accuracy {accuracy:.3f}; sample {sample} makes "
            f"{int(one.spikes_per_sample()[0])} spikes in {metrics['T']} step(s)"))

    def _retrain(self, _) -> None:
        """Rerun the chain and baselines in a worker thread (progress bar, cancellable)."""
        dataset = self.settings.dataset
        doc = pn.state.curdoc
        self._cancel.clear()
        self.retrain_button.disabled, self.cancel_button.disabled = True, False
        self.progress.value, self.progress.visible = 0, True
        self.status.object = f"Retraining the {dataset} chain…"

        def on_ui(fn):
            if doc is not None:
                doc.add_next_tick_callback(fn)
            else:
                fn()

        def on_epoch(label: str) -> bool:
            def show():
                self.progress.value = min(self.progress.value + 1, STEPS_PER_RUN)
                self.status.object = f"Retraining: {label}…"
            on_ui(show)
            return not self._cancel.is_set()

        def work():
            model, _ = DATASETS[dataset]
            ann, data, _ = study(dataset)
            try:
                cached_chain(ann, load_model(model, progress=False)[1], data, IIRConfig(),
                             progress=False, on_epoch=on_epoch, retrain=True)
                message = "Retrained; the new checkpoints are cached."
                study.cache_clear()
            except Cancelled:
                message = "Cancelled: the cached models are unchanged."

            def finish():
                self.status.object = message
                self.progress.visible = False
                self.retrain_button.disabled, self.cancel_button.disabled = False, True
                self.version += 1
            on_ui(finish)

        threading.Thread(target=work, daemon=True).start()

    def __panel__(self) -> pn.viewable.Viewable:
        p = self.settings.param
        widgets = pn.Param(self.settings, widgets={"sample": {"type": pn.widgets.IntInput}},
                           show_name=False, width=300)

        def view(method, *deps):
            return pn.pane.HoloViews(hv.DynamicMap(pn.bind(method, *deps)),
                                     sizing_mode="stretch_width")

        energy_views = energy_panel(
            lambda dataset, setting, version, memory: energy_report(
                *run(dataset, setting, version)[:2], include_memory=memory),
            [p.dataset, p.setting, self.param.version, p.memory], p.device)
        intro = pn.pane.Markdown(
            "**IIR-SNN** (Chowdhury, Rathi & Roy, 2021) trains a direct-input SNN at T = 5, then "
            "retrains it at T = 4, 3, 2, 1, each stage starting from the previous one, with "
            "trainable thresholds and leaks. Trained at T = 1 from scratch, spikes vanish layer "
            "by layer; the chain keeps enough activity for the thresholds to be learned. The "
            "baselines get the same total number of epochs.", sizing_mode="stretch_width")
        return pn.Row(
            pn.Column("### Settings", widgets, self.retrain_button, self.cancel_button,
                      self.progress, self.status),
            pn.Column(intro, view(self.chain, p.dataset, self.param.version),
                      view(self.chain_energy, p.dataset, self.param.version),
                      view(self.rates, p.dataset, p.setting, self.param.version),
                      view(self.raster, p.dataset, p.setting, p.sample, self.param.version),
                      "### Energy", energy_views, sizing_mode="stretch_width"),
            sizing_mode="stretch_width")
