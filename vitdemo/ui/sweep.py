"""The Train page's sweep panel: "try many settings" of the run in the form, and the view of a sweep (its trials
against their settings, the best so far, what mattered, "use the best settings"). Thin: the sweep is
vitdemo.sweeps', the figures vitdemo.views.sweep's; starting one records it and starts its driver
(vitdemo.sweeps.drive.launch), which queues ordinary runs as the person who started it."""

from __future__ import annotations

import importlib.util

import streamlit as st

from vitdemo.config import ConfigError, TrainConfig
from vitdemo.runconfig import RunConfig
from vitdemo.runs.dbfile import RegistryError
from vitdemo.runs.executor import RAY_INSTALL
from vitdemo.runs.people import Actor
from vitdemo.runs.store import Registry
from vitdemo.ui import view as view_mode
from vitdemo.views import charts, forms
from vitdemo.views import sweep as view

K = "sw_"  # widget keys


def optuna_installed() -> bool:
    return importlib.util.find_spec("optuna") is not None


def sweep_panel(reg: Registry, config: RunConfig | None, actor: Actor | None) -> None:
    """An expander under the form: start a sweep of the form's run, and look at the sweeps there are. The Expert
    view's only (samplers, pruning and ranges are its words; the Simple view trains one run at a time)."""
    if view_mode.simple():
        return
    with st.expander("Try many settings (sweep)", icon=":material/tune:"):
        if not optuna_installed():
            st.info(f"Sweeps need Optuna: install it with `{RAY_INSTALL}` and start the app again.")
            return
        _start_form(reg, config, actor)
        _sweep_view(reg, actor)


def _start_form(reg: Registry, config: RunConfig | None, actor: Actor | None) -> None:
    if not isinstance(config, TrainConfig):
        st.caption("A sweep varies a network's training: pick a linear, MLP, CNN or ViT model in the form.")
        return
    offered = {c.label: c for c in view.candidates(config.model.kind)}
    picked = st.multiselect("Settings to vary", list(offered), default=["learning rate"], key=K + "params")
    params = []
    for label in picked:
        p = offered[label].param
        if p.choices:
            st.caption(f"{label}: tries {', '.join(map(str, p.choices))}")
            params.append(p)
            continue
        c1, c2 = st.columns(2)
        fmt = "%d" if p.integer else "%g"
        low = c1.number_input(f"{label} from", value=p.low, format=fmt, key=f"{K}{p.name}_low")
        high = c2.number_input(f"{label} to", value=p.high, format=fmt, key=f"{K}{p.name}_high")
        params.append(type(p)(p.name, float(low), float(high), log=p.log, integer=p.integer))
    c1, c2 = st.columns(2)
    budget = c1.number_input("Runs (budget)", min_value=2, max_value=50, value=12, step=1, key=K + "budget")
    goal = c2.selectbox("Goal", list(view.GOALS), format_func=view.goal_label, key=K + "goal")
    st.caption("Each trial is an ordinary run in the queue (your limits apply); runs that fall below the median at "
               "an epoch stop early. On this laptop they train one after another, on a Ray cluster side by side.")  # fmt: skip
    if actor is not None and st.button("Start sweep", icon=":material/play_arrow:", key=K + "start"):
        from vitdemo.sweeps.drive import launch
        from vitdemo.sweeps.space import SweepSpec

        try:
            sweep_id = launch(reg, SweepSpec(config, tuple(params), budget=int(budget), goal=goal), actor)
            st.session_state[K + "shown"] = sweep_id
        except (ConfigError, RegistryError) as exc:
            st.error(getattr(exc, "public", None) or str(exc), icon=":material/error:")


def _sweep_view(reg: Registry, actor: Actor | None) -> None:
    from vitdemo.sweeps import record
    from vitdemo.sweeps.drive import stop
    from vitdemo.sweeps.report import summarise

    sweeps = {s.id: s for s in record.list_sweeps(reg)}
    if not sweeps:
        return
    shown = st.session_state.get(K + "shown")
    ids = list(sweeps)
    chosen = st.selectbox("Sweep", ids, index=ids.index(shown) if shown in ids else 0, key=K + "pick",
                          format_func=lambda i: f"#{i} {sweeps[i].name}")  # fmt: skip
    sweep = sweeps[chosen]
    summary = summarise(reg, sweep)
    st.caption(charts.literal_markdown(view.sweep_caption(summary, sweep.spec.budget, sweep.ended_at is not None)))
    for fig, key in (
        (view.parallel_figure(summary, sweep.spec.goal), "parallel"),
        (view.best_so_far_figure(summary, sweep.spec.goal), "best"),
        (view.importance_figure(summary), "importance"),
    ):
        if fig is not None:
            st.plotly_chart(fig, key=f"{K}{key}_{chosen}", config={"displayModeBar": False})
    st.dataframe(view.trials_frame(summary), hide_index=True, key=f"{K}trials_{chosen}")
    c1, c2 = st.columns(2)
    if summary.best_config is not None and c1.button("Use the best settings", key=K + "use_best"):
        from vitdemo.ui.train import prefill_form

        prefill_form(f"#{summary.best['run_id']} (the sweep's best)", forms.values_from_config(summary.best_config))
        st.rerun()
    owner = actor is not None and (actor.teacher or actor.owner == sweep.owner)
    if owner and sweep.ended_at is None and not sweep.stop_requested and c2.button("Stop the sweep", key=K + "stop"):
        stop(reg, sweep.id, actor)
