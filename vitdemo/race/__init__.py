"""The training race: a ViT and a CNN learning the same small training set at the same time, steered live.

`knobs` (what the audience turns, and which turn restarts which model), `engine` (the `Race`: a background thread
that steps both learners with the house's one `train_step`, applies knob changes between steps and publishes
immutable views for any number of viewers), `sides` (the torch half: data, learners, evaluation), `save` (a race
kept as two ordinary runs) and `limits` (the teacher's cap on students' own races). Importing the package, its
knobs, engine and limits does not import torch; `sides` and `save` do, when a race starts or is saved.
"""
