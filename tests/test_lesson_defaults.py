"""Issue 24, class defaults that fit a lesson: the Train form opens on a quick preset, the student limits fit
30 students on 2 cores, and a run given no name is called after its owner and model, uniquely."""

from __future__ import annotations

from vitdemo.config import CNNConfig, TrainConfig
from vitdemo.runs import admission, queue
from vitdemo.runs.limits import Limits, counted_epochs, limit_problems
from vitdemo.runs.people import CLI, HOME, Actor
from vitdemo.runs.store import Registry
from vitdemo.views import forms

TINY = TrainConfig(model=CNNConfig(width=4, depth=1), epochs=1, train_subset=200, val_size=100, device="cpu")
# The quick lesson preset's measured times, `python -m vitdemo train` on the 2-core machine (1 thread, load ~3):
# the CNN 21.4 s from the command to its result (11.2 s of training, test 98.24%), the ViT 26.6 s (74.73%).
MEASURED_S = {"cnn": 21.4, "vit": 26.6}


def _rate(images_per_s: float) -> admission.Estimator:
    return admission.Estimator(lambda model, batch, device: images_per_s, threads=1)


def test_the_form_opens_on_the_quick_lesson_preset_with_a_cnn() -> None:
    values = forms.start_values()
    assert values["model_kind"] == "cnn"
    assert values == forms.apply_preset({**forms.default_values(), "model_kind": "cnn"}, "quick lesson")
    config = forms.config_from_values(values)
    assert (config.epochs, config.train_subset, config.model.width, config.model.design) == (2, 10_000, 16, "lean")
    assert forms.config_from_values(forms.default_values()).epochs == 10  # what it opened on before: 10 full epochs


def test_the_quick_preset_fits_the_default_student_limits() -> None:
    limits = Limits()
    for kind in ("cnn", "vit"):
        config = forms.config_from_values({**forms.start_values(), "model_kind": kind, "device": "cpu"})
        params = admission.estimate_parameters(config.model)
        # at the training speed measured for the CNN (20,000 images in 11.2 s) the estimate is well under 30 s
        seconds = admission.run_seconds(config, 20_000 / 11.2)
        assert seconds < 30 and MEASURED_S[kind] < 30
        assert limit_problems(limits, num_params=params, epochs=counted_epochs(config), minutes=seconds / 60) == []


def test_default_limits_fit_thirty_students_on_two_cores() -> None:
    limits = Limits()
    assert limits.max_active_runs == 1  # one run each in the queue: 30 students, 30 runs
    assert 30 * limits.max_minutes <= 60  # the last of 30 one-at-a-time runs starts within the hour
    assert limits.max_epochs <= 10
    old = Limits(max_active_runs=2, max_minutes=10.0, max_epochs=20)
    assert 30 * old.max_active_runs * old.max_minutes > 60 * 9  # the old defaults: a ten-hour queue


def _student(reg: Registry, name: str) -> Actor:
    from vitdemo.runs import people

    person = people.register(reg, name)
    return Actor(person.owner, person.name)


def test_runs_without_a_name_are_named_after_their_owner_and_numbered(reg: Registry) -> None:
    ana, ben = _student(reg, "Ana"), _student(reg, "Ben")
    fast = _rate(1e5)
    ids = [queue.submit(reg, TINY, who, estimator=fast) for who in (ana, ben)]
    for run_id in ids:
        queue.request_cancel(reg, run_id, ana if run_id == ids[0] else ben)  # one run each at a time
    ids.append(queue.submit(reg, TINY, ana, estimator=fast))
    queue.request_cancel(reg, ids[-1], ana)
    vit = TrainConfig(model=forms.config_from_values(forms.start_values() | {"model_kind": "vit"}).model, epochs=1,
                      train_subset=200, val_size=100, device="cpu")  # fmt: skip
    ids.append(queue.submit(reg, vit, ana, estimator=fast))
    ids.append(queue.submit(reg, TINY, HOME, estimator=fast))
    names = [reg.get_run(i).name for i in ids]
    assert names == ["Ana's CNN 1", "Ben's CNN 1", "Ana's CNN 2", "Ana's ViT 1", "CNN 1"]
    assert len(set(names)) == len(names)


def test_a_name_already_taken_is_skipped(reg: Registry) -> None:
    ana = _student(reg, "Ana")
    queue.submit(reg, TrainConfig(**{**TINY.__dict__, "name": "Ana's CNN 1"}), CLI)  # someone chose it by hand
    assert reg.get_run(queue.submit(reg, TINY, ana, estimator=_rate(1e5))).name == "Ana's CNN 2"


def test_a_given_name_and_the_command_line_keep_theirs(reg: Registry) -> None:
    ana = _student(reg, "Ana")
    named = TrainConfig(**{**TINY.__dict__, "name": "my best"})
    assert reg.get_run(queue.submit(reg, named, ana, estimator=_rate(1e5))).name == "my best"
    assert reg.get_run(queue.submit(reg, TINY, CLI)).name == "cnn-mnist-w4x1-e1"  # a terminal's: its settings
