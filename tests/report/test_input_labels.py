"""Sensitivity charts show readable labels for opaque input columns (the draws keep their column names)."""

from evlaunch.report.sensitivity import input_label
from evlaunch.simulation.parameters import AWARENESS_EVENTS


def test_the_ramp_shape_draws_get_readable_labels_and_other_inputs_keep_their_names():
    labels = [input_label(name) for name in AWARENESS_EVENTS]
    assert labels == ["delivery ramp speed (reference-class draw; low = fast)",
                      "delivery ramp width (reference-class draw)"]
    assert not any("awareness_shape_event" in label for label in labels)
    assert input_label("product.price") == "product.price"
