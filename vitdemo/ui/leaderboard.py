"""The Leaderboard page's widgets: the filtered table of every run (with who trained it, filtered by family too),
what can be done with one run (reuse its settings, download its checkpoint, delete it: only its owner or the
teacher, which vitdemo.runs.queue.delete_run checks) and the label-budget study (accuracy against the number of
labels, read from the results file scripts/compare_label_budget.py --json writes beside the shipped models).
Runs side by side: vitdemo.ui.compare."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from vitdemo.config import ConfigError
from vitdemo.paths import shipped_dir
from vitdemo.runs import milestones as run_race
from vitdemo.runs import people as run_people
from vitdemo.runs import queue
from vitdemo.runs.baselines import sync_baselines
from vitdemo.runs.dbfile import RegistryError
from vitdemo.runs.store import STATUSES, Registry, Run
from vitdemo.ui import people, view
from vitdemo.ui.shell import registry
from vitdemo.ui.train import prefill_form
from vitdemo.ui.widgets import family_picker
from vitdemo.views import charts, forms, label_budget, standings
from vitdemo.views.names import DATASETS_SHORT, KINDS, family_name
from vitdemo.views.words import say

_NOTICE = "_runs_notice"  # a message that must survive one st.rerun (e.g. after a delete)
COLUMN_CONFIG = {
    "test accuracy": st.column_config.NumberColumn("test accuracy", format="percent"),
    "macro F1": st.column_config.NumberColumn("macro F1", format="%.4f"),
    "parameters": st.column_config.NumberColumn("parameters", format="localized"),
    "date": st.column_config.DatetimeColumn("date", format="YYYY-MM-DD HH:mm"),
    "shipped": st.column_config.CheckboxColumn("shipped", help="a baseline that ships with the app"),
}
EXPERT_COLUMNS = ("parameters", "macro F1", "training time (s)", "device")  # shown in the Expert view only
RACE_COLUMNS = {"validation accuracy": st.column_config.NumberColumn("validation accuracy", format="percent")}


def all_runs() -> tuple[Registry, list[Run], dict[str, str]]:
    """The registry, every run in it (shipped baselines registered first) and the owners' names."""
    reg = registry()
    sync_baselines(reg, shipped_dir())
    return reg, reg.list_runs(), run_people.owner_names(reg)


def show_notice() -> None:
    """A message left by the previous script run (before an st.rerun), shown once."""
    notice = st.session_state.pop(_NOTICE, None)
    if notice:
        st.success(notice)


def leaderboard_filters(frame: pd.DataFrame, runs: list[Run]) -> pd.DataFrame:
    """Filters above the table: dataset, family, model kind, status, and a name search."""
    c1, c2, c3, c4, c5 = st.columns([1, 1.2, 1, 1.1, 1.2])
    datasets = c1.multiselect("Dataset", list(DATASETS_SHORT.values()), key="lb_datasets")
    with c2:
        families = [family_name(f) for f in family_picker(runs, key="lb_families")]
    models = list(KINDS.values()) + sorted(set(frame["kind"]) - set(KINDS.values()))
    kinds = c3.multiselect("Model", models, key="lb_kinds")
    statuses = c4.multiselect("Status", list(STATUSES), key="lb_statuses")
    text = c5.text_input("Name contains", key="lb_text")
    return charts.filter_leaderboard(
        frame, datasets=datasets, kinds=kinds, statuses=statuses, text=text, families=families
    )


def leaderboard_table(frame: pd.DataFrame) -> None:
    """The runs, sortable by clicking a column header, and the CSV of what is shown."""
    order = None if view.expert() else [c for c in frame.columns if c not in EXPERT_COLUMNS]
    st.dataframe(frame, hide_index=True, column_config=COLUMN_CONFIG, column_order=order, key="lb_table")
    st.download_button(
        "Export CSV", charts.leaderboard_csv(frame), file_name="vitdemo-leaderboard.csv", mime="text/csv",
        icon=":material/download:", on_click="ignore", key="lb_csv",
    )  # fmt: skip


def use_settings(run: Run) -> None:
    """Send a run's settings to the Train form and go there."""
    try:
        values = forms.values_from_config(run.config)
    except ConfigError as exc:
        st.error(f"The settings of run #{run.id} cannot be used: {exc}")
        return
    prefill_form(f"#{run.id} {charts.literal_markdown(run.name)}", {**values, "name": ""})  # a new name for a new run
    st.switch_page("app_pages/train.py")


def _delete(reg: Registry, run: Run) -> None:
    """Delete a run after a confirmation, if it is yours (or you are the teacher); baselines, unfinished runs and
    other people's runs are explained instead."""
    actor = people.actor()
    if run.baseline:
        st.info("Shipped baselines can't be deleted: they come with the app.")
        return
    if run.status in ("queued", "running"):
        st.info(f"Run #{run.id} is {run.status}: cancel it on the Train page before deleting it.")
        return
    if actor is None or not actor.may_change(run):
        st.caption("Only the run's owner or the teacher can delete it.")
        return
    confirm = st.checkbox(f"Yes, delete run #{run.id} and its checkpoint", key=f"lb_confirm_{run.id}")
    if st.button("Delete run", key=f"lb_delete_{run.id}", disabled=not confirm, icon=":material/delete:"):
        try:
            queue.delete_run(reg, run.id, actor)  # checks the owner again, in the registry
        except RegistryError as exc:  # not yours, or already gone
            st.error(charts.literal_markdown(exc.public))  # it may name the owner
            return
        except ValueError as exc:
            st.error(str(exc))
            return
        st.session_state[_NOTICE] = f"Run #{run.id} was deleted."
        st.rerun()


def run_actions(reg: Registry, run: Run) -> None:
    """What can be done with one run: copy its settings, download its checkpoint, delete it."""
    c1, c2 = st.columns(2)
    if c1.button(
        "Use these settings",
        key=f"lb_use_{run.id}",
        icon=":material/content_copy:",
        help="Copy them into the Train form",
    ):
        use_settings(run)
    path = Path(run.checkpoint) if run.checkpoint else None
    if path is not None and path.is_file():
        c2.download_button(
            "Download checkpoint", path.read_bytes(), file_name=path.name, mime="application/octet-stream",
            icon=":material/download:", on_click="ignore", key=f"lb_download_{run.id}",
        )  # fmt: skip
    else:
        c2.caption("No checkpoint file for this run.")
    _delete(reg, run)


# --- the label-budget study -----------------------------------------------------------------------------------
BUDGET_COLUMNS = {
    **{name: st.column_config.NumberColumn(name, format="percent") for name in ("train acc", "val acc", "test acc")},
    **{name: st.column_config.NumberColumn(name, format="%.3f") for name in ("train loss", "val loss", "test loss")},
    "test macro F1": st.column_config.NumberColumn("test macro F1", format="%.4f"),
    "fine-tune (s)": st.column_config.NumberColumn("fine-tune (s)", format="%.0f"),
    "pretraining (s)": st.column_config.NumberColumn("pretraining (s)", format="%.0f"),
}


def label_budget_section() -> None:
    """Accuracy against the number of labels for the CNN, CNN + SimCLR, ViT and ViT + MAE, as a plot and a table,
    from the results file that ships beside the checkpoints."""
    path = shipped_dir() / label_budget.FILE_NAME
    if not path.is_file():
        st.caption(
            view.pick(
                say("leaderboard", "budget_missing"),
                "No label-budget results ship with this copy of the app yet: scripts/compare_label_budget.py "
                f"--json writes them to {label_budget.FILE_NAME} beside the shipped models.",
            )
        )
        return
    try:
        rows, note = label_budget.read_results(path)
    except label_budget.BudgetFileError as exc:
        st.warning(
            view.pick(
                say("leaderboard", "budget_broken"),
                f"The label-budget results cannot be shown: {exc}. Write them again with the script.",
            )
        )
        return
    if not rows:
        st.caption("The label-budget results file holds no runs yet.")
        return
    st.caption(
        view.pick(
            say("leaderboard", "budget_caption"),
            "How much does pretraining without labels help? Each model is trained on only 100, 600, 6,000 or all "
            "the labelled training images; the dashed lines start from an encoder pretrained on the unlabelled "
            "images (MAE for the ViT, SimCLR for the CNN).",
        )
    )
    st.plotly_chart(label_budget.budget_figure(rows), key="lb_budget", config={"displayModeBar": False})
    for line in label_budget.budget_caveat(rows):  # a line that falls for want of training, said under the chart
        st.info(charts.literal_markdown(line), icon=":material/lightbulb:")
    for line in label_budget.budget_summary(rows) if view.expert() else []:  # method names: Expert only
        st.markdown(f"- {charts.literal_markdown(line)}")
    if view.expert():  # losses, F1 and seconds: the Expert view's
        st.dataframe(
            label_budget.budget_frame(rows), hide_index=True, column_config=BUDGET_COLUMNS, key="lb_budget_table"
        )
    if note and view.expert():
        st.caption(charts.literal_markdown(note))


def race_section(reg: Registry, dataset: str) -> None:
    """Fastest to 99% (or 98, 99.5), per person, one table per device: only runs on the same device compare."""
    targets = {standings.milestone_label(m): m for m in run_race.MILESTONES}
    picked = st.segmented_control(
        "Finish line", list(targets), default=standings.milestone_label(run_race.TARGET), key="lb_race_target"
    )
    target = targets.get(picked or "", run_race.TARGET)
    board = run_race.standings(reg, dataset, target)
    if not board:
        st.info(standings.empty_race_text(target), icon=":material/sports_score:")
        return
    for device, finishes in board.items():
        st.caption(
            f"Validation accuracy {standings.milestone_label(target)} {standings.device_label(device)}: each person's fastest run"
        )
        st.dataframe(standings.standings_frame(finishes), hide_index=True, column_config=RACE_COLUMNS)
